package io.cm4j.cli;

import io.cm4j.hub.ConsoleProgress;
import io.cm4j.hub.HubClient;
import io.cm4j.hub.HubException;
import io.cm4j.hub.ModelLocator;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/**
 * {@code --revision} for a {@code --model} that may be a Hub ID, and the resolving of that
 * {@code --model}: generate and serve find their model the same way. ({@code download} words its
 * own --revision: its argument is always a Hub ID.)
 */
final class RevisionOption {
  @Option(names = "--revision", paramLabel = "REV",
      description = "Branch, tag or commit of a Hub model (default: main).")
  String revision;

  /** The local folder or file {@code model} names; a Hub ID is fetched first (progress: stderr). */
  Path resolve(String model, Main main) throws HubException {
    return ModelLocator.resolve(model, revision, new HubClient(main.env()),
        ConsoleProgress.forStderr());
  }
}
