package io.cm4j.cli;

import io.cm4j.hub.ConsoleProgress;
import io.cm4j.hub.HubClient;
import io.cm4j.hub.HubException;
import io.cm4j.hub.ModelLocator;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/**
 * {@code --model} that may be a Hub ID, its {@code --revision}, and the resolving of the two:
 * generate, edit and serve open their pipeline from the same kinds of model, so they declare,
 * word and find it alike. ({@code download} words its own --revision: its argument is always a
 * Hub ID; unet and bench take a local --model only, with {@link UNetOptions}.)
 */
final class HubModelOptions {
  @Option(names = "--model", paramLabel = "ID|DIR|FILE", defaultValue = HubClient.DEFAULT_MODEL_ID,
      description = "A Hugging Face model ID (fetched once into the Hugging Face cache), a "
          + "diffusers pipeline folder, or a UNet weights file: safetensors, torch .bin, Paddle "
          + ".pdparams (config.json beside it), or an original OpenAI .pt checkpoint "
          + "(default: ${DEFAULT-VALUE}).")
  String model;

  @Option(names = "--revision", paramLabel = "REV",
      description = "Branch, tag or commit of a Hub model (default: main).")
  String revision;

  /** The local folder or file --model names; a Hub ID is fetched first (progress: stderr). */
  Path resolve(Main main) throws HubException {
    return ModelLocator.resolve(model, revision, new HubClient(main.env()),
        ConsoleProgress.forStderr());
  }
}
