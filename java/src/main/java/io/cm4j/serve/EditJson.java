package io.cm4j.serve;

import io.cm4j.FloatTensor;
import io.cm4j.edit.EditImages;
import io.cm4j.edit.EditRequest;
import io.cm4j.edit.EditTask;
import io.cm4j.weights.Json;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The JSON body of {@code POST /edit/{task}}: one image to edit, as {@code cm4j edit} takes it.
 *
 * <pre>
 * {"image": "iVBORw0...", "mask": "iVBORw0...", "class": 1, "seed": 0, "steps": 3}
 * </pre>
 * {@code image}: a PNG in base64 (a {@code data:image/png;base64,} prefix is fine), of the
 * model's size or center-cropped and scaled to it; {@code mask} (inpaint only): a PNG, white
 * where to generate, black where to keep; {@code steps} or {@code timesteps}: the task's
 * default when left out; {@code sigma} and {@code add_noise}: denoise only. Checked here as far
 * as the body goes; the editor checks the rest and names the argument.
 *
 * <p>Interpolate takes no image: {@code {"alpha": 0.5, "class": 145, "seed": 6}} is the one
 * image at {@code alpha} between the two latents the seed draws, the image that
 * {@code cm4j edit interpolate --alphas ... --seed 6} makes at that position; a client asks for
 * each position it wants, and the requests share passes.
 */
final class EditJson {
  private static final Set<String> FIELDS = Set.of("image", "mask", "class", "seed", "steps",
      "timesteps", "sigma", "add_noise");
  private static final String EXAMPLE = "{\"image\": \"<base64 PNG>\", \"seed\": 0}";
  private static final Set<String> INTERPOLATE_FIELDS = Set.of("alpha", "class", "seed");
  private static final String INTERPOLATE_EXAMPLE = "{\"alpha\": 0.5, \"seed\": 0}";

  private EditJson() {}

  static EditRequest parse(byte[] body, EditTask task, int imageSize, int numClassEmbeds,
      int numTrainTimesteps, int maxSteps) throws BadRequestException {
    if (!task.takesImage()) {
      return interpolation(body, numClassEmbeds);
    }
    Map<?, ?> map = GenerateJson.object(body, FIELDS, EXAMPLE);
    EditRequest.Builder b = EditRequest.builder(task);
    Object image = map.get("image");
    if (image == null) {
      throw new BadRequestException("image: expected a PNG in base64, found nothing");
    }
    b.image(png("image", image, imageSize, task));
    Object mask = map.get("mask");
    if (mask != null) {
      b.maskKeep(png("mask", mask, imageSize, task));
    }
    seedAndLabel(map, b, numClassEmbeds);
    Object schedule = GenerateJson.schedule(map, numTrainTimesteps, maxSteps);
    if (schedule instanceof Integer steps) {
      b.numInferenceSteps(steps);
    } else if (schedule instanceof int[] timesteps) {
      b.timesteps(timesteps);
    }
    Object sigma = map.get("sigma");
    if (sigma != null) {
      if (!(sigma instanceof Number n)) {
        throw new BadRequestException("sigma: expected a number, found " + Json.typeName(sigma));
      }
      b.sigma(n.floatValue());
    }
    Object addNoise = map.get("add_noise");
    if (addNoise != null) {
      if (!(addNoise instanceof Boolean add)) {
        throw new BadRequestException("add_noise: expected true or false, found "
            + Json.typeName(addNoise));
      }
      b.addNoise(add);
    }
    return b.build();
  }

  /** Interpolate: one position; the editor checks that alpha is in [0, 1]. */
  private static EditRequest interpolation(byte[] body, int numClassEmbeds)
      throws BadRequestException {
    Map<?, ?> map = GenerateJson.object(body, INTERPOLATE_FIELDS, INTERPOLATE_EXAMPLE);
    Object alpha = map.get("alpha");
    if (!(alpha instanceof Number a)) {
      throw new BadRequestException("alpha: expected a number in [0, 1], found "
          + (alpha == null ? "nothing" : Json.typeName(alpha)));
    }
    EditRequest.Builder b = EditRequest.builder(EditTask.INTERPOLATE).alphas(a.doubleValue());
    seedAndLabel(map, b, numClassEmbeds);
    return b.build();
  }

  private static void seedAndLabel(Map<?, ?> map, EditRequest.Builder b, int numClassEmbeds)
      throws BadRequestException {
    Object seed = map.get("seed");
    if (seed != null) {
      b.seed(GenerateJson.integer("seed", seed));
    }
    Long label = GenerateJson.classLabel(map, numClassEmbeds);
    if (label != null) {
      b.classLabels(label);
    }
  }

  /**
   * A base64 PNG as the editor's tensor: an image [1, 3, S, S] (superres also takes a smaller
   * one), or for "mask" a mask_keep [1, 1, S, S]. EditImages reads files, so the PNG passes
   * through a temporary one; its messages name the field instead.
   */
  private static FloatTensor png(String field, Object value, int size, EditTask task)
      throws BadRequestException {
    if (!(value instanceof String text)) {
      throw new BadRequestException(field + ": expected a PNG in base64, found "
          + Json.typeName(value));
    }
    String data = text.startsWith("data:") ? text.substring(text.indexOf(',') + 1) : text;
    byte[] bytes;
    try {
      bytes = Base64.getDecoder().decode(data.replaceAll("\\s", ""));
    } catch (IllegalArgumentException e) {
      throw new BadRequestException(field + ": not valid base64");
    }
    Path file = null;
    try {
      file = Files.createTempFile("cm4j-edit-", ".png");
      Files.write(file, bytes);
      return field.equals("mask") ? EditImages.readMasks(List.of(file), size, true)
          : EditImages.readImages(List.of(file), size, true, task == EditTask.SUPERRES);
    } catch (IllegalArgumentException e) {
      // EditImages' own findings (size, mask values) name the problem; a decoder's exception
      // (the cause) has text of its own, which an answer never carries
      String message = e.getMessage();
      throw new BadRequestException(field + ": " + (e.getCause() == null && message != null
          && message.startsWith(file + ": ") ? message.substring(file.toString().length() + 2)
          : "unreadable PNG"));
    } catch (IOException e) {
      throw new BadRequestException(field + ": unreadable PNG");
    } finally {
      if (file != null) {
        try {
          Files.deleteIfExists(file);
        } catch (IOException e) {
          // the temporary directory's cleaner takes it
        }
      }
    }
  }
}
