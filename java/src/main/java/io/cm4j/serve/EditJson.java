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
 */
final class EditJson {
  private static final Set<String> FIELDS = Set.of("image", "mask", "class", "seed", "steps",
      "timesteps", "sigma", "add_noise");
  private static final String EXAMPLE = "{\"image\": \"<base64 PNG>\", \"seed\": 0}";

  private EditJson() {}

  static EditRequest parse(byte[] body, EditTask task, int imageSize, int numClassEmbeds,
      int numTrainTimesteps, int maxSteps) throws BadRequestException {
    if (!task.takesImage()) {
      throw new BadRequestException(task.cliName() + ": not served over HTTP (it takes no "
          + "image); use cm4j edit " + task.cliName());
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
    Object seed = map.get("seed");
    if (seed != null) {
      b.seed(GenerateJson.integer("seed", seed));
    }
    Long label = GenerateJson.classLabel(map, numClassEmbeds);
    if (label != null) {
      b.classLabels(label);
    }
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
      String message = e.getMessage();
      throw new BadRequestException(field + ": " + (message.startsWith(file + ": ")
          ? message.substring(file.toString().length() + 2) : "unreadable PNG"));
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
