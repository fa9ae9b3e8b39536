package io.cm4j;

import java.util.Objects;

/**
 * The replacement operator of an editing loop run by {@link UNet#edit} (native/include/cm4j.h,
 * {@code cm4j_unet_edit}): what each step keeps of the reference y after denoising.
 *
 * @param kind the operator; its ordinal is the C API's {@code CM4J_EDIT_*} value
 * @param reference y, [B, C, S, S] like the sample; null for {@link Kind#NONE}
 * @param maskKeep [B, 1, S, S] of 0 and 1 for {@link Kind#INPAINT}, else null
 * @param patch the patch size for {@link Kind#SUPERRES}, else 0
 */
public record EditReplacement(Kind kind, FloatTensor reference, FloatTensor maskKeep,
    int patch) {
  /** d; M*y + (1-M)*d; d + q (q.y - q.d); (d - mean_p(d)) + y. */
  public enum Kind { NONE, INPAINT, COLORIZE, SUPERRES }

  public EditReplacement {
    Objects.requireNonNull(kind, "kind");
    if ((kind == Kind.NONE) != (reference == null)) {
      throw new IllegalArgumentException("reference: expected one exactly when the kind is not "
          + "NONE, kind " + kind);
    }
    if ((kind == Kind.INPAINT) != (maskKeep != null)) {
      throw new IllegalArgumentException("maskKeep: expected one exactly for INPAINT, kind "
          + kind);
    }
  }

  /** No replacement (sdedit, denoise, interpolate). */
  public static EditReplacement none() {
    return new EditReplacement(Kind.NONE, null, null, 0);
  }
}
