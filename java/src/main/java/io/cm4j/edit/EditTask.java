package io.cm4j.edit;

import io.cm4j.EditReplacement;
import java.util.Locale;

/**
 * The zero-shot editing tasks of the Consistency Models paper (Song et al. 2023, Algorithm 4
 * and Appendix D), with the schedule each runs when none is given.
 */
public enum EditTask {
  /** Fills the pixels a mask leaves free ({@code iterative_inpainting} of the original code). */
  INPAINT("inpaint", EditReplacement.Kind.INPAINT, 30, 20, 10, 0),
  /** Colours a grayscale image, keeping its luma ({@code iterative_colorization}). */
  COLORIZE("colorize", EditReplacement.Kind.COLORIZE, descending(40)),
  /** Adds detail under a low-resolution image's patch means ({@code iterative_superres}). */
  SUPERRES("superres", EditReplacement.Kind.SUPERRES, 30, 20, 10, 0),
  /** Stroke-guided editing: noises the strokes to 5.38, then samples (timesteps [20, 16]). */
  SDEDIT("sdedit", EditReplacement.Kind.NONE, 20, 16),
  /** One denoising step at a given sigma ({@code KarrasDenoiser.denoise}). */
  DENOISE("denoise", EditReplacement.Kind.NONE),
  /** Spherical interpolation between two latents, then the one-step pipeline. */
  INTERPOLATE("interpolate", EditReplacement.Kind.NONE, 0);

  private final String cliName;
  private final EditReplacement.Kind replacement;
  private final int[] defaultTimesteps;

  EditTask(String cliName, EditReplacement.Kind replacement, int... defaultTimesteps) {
    this.cliName = cliName;
    this.replacement = replacement;
    this.defaultTimesteps = defaultTimesteps;
  }

  private static int[] descending(int n) {
    int[] t = new int[n];
    for (int i = 0; i < n; i++) {
      t[i] = n - 1 - i;
    }
    return t;
  }

  /** The name the CLI and the service use: {@code inpaint}, {@code superres}, ... */
  public String cliName() {
    return cliName;
  }

  /** The task of a CLI name, case-insensitive. */
  public static EditTask fromName(String name) {
    for (EditTask t : values()) {
      if (t.cliName.equals(name.toLowerCase(Locale.ROOT))) {
        return t;
      }
    }
    throw new IllegalArgumentException("unknown edit task '" + name + "': expected one of "
        + "inpaint, colorize, superres, sdedit, denoise, interpolate");
  }

  EditReplacement.Kind replacement() {
    return replacement;
  }

  /** Whether the task starts from an image (all but interpolate). */
  public boolean takesImage() {
    return this != INTERPOLATE;
  }

  /**
   * Whether every step draws noise, the last included, as the original's iterative editing
   * loops do; the others follow diffusers' scheduler (noise only on a multistep schedule).
   */
  boolean alwaysDrawsNoise() {
    return replacement != EditReplacement.Kind.NONE || this == SDEDIT;
  }

  /** The timesteps run when neither steps nor timesteps are given (empty for denoise). */
  public int[] defaultTimesteps() {
    return defaultTimesteps.clone();
  }
}
