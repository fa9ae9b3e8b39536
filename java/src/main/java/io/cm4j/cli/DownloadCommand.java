package io.cm4j.cli;

import io.cm4j.hub.ConsoleProgress;
import io.cm4j.hub.HubClient;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/**
 * {@code cm4j download}: fetches (or refreshes) a ConsistencyModelPipeline into the Hugging
 * Face cache and prints its snapshot folder, which {@code generate --model} accepts.
 */
@Command(
    name = "download",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
        "Downloads a model into the Hugging Face cache; prints its folder.",
        "Fetches a diffusers ConsistencyModelPipeline into the Hugging Face cache (shared with "
            + "Python's huggingface_hub) and prints its snapshot folder. Files already cached "
            + "are not fetched again; a branch is checked for a newer commit.",
        "Environment: HF_HOME, HF_HUB_CACHE, HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE. Progress "
            + "goes to stderr: a bar on a terminal, else one line per file."})
final class DownloadCommand implements Callable<Integer> {
  @Spec CommandSpec spec;
  @ParentCommand Main main;

  @Parameters(index = "0", arity = "0..1", paramLabel = "MODEL_ID",
      defaultValue = HubClient.DEFAULT_MODEL_ID,
      description = "org/name on the Hub (default: ${DEFAULT-VALUE}).")
  String modelId;

  @Option(names = "--revision", paramLabel = "REV",
      description = "Branch, tag or commit (default: main).")
  String revision;

  @Override
  public Integer call() throws Exception {
    Path snapshot = new HubClient(main.env()).downloadModel(modelId, revision,
        ConsoleProgress.forStderr());
    spec.commandLine().getOut().println(snapshot);
    spec.commandLine().getOut().flush();
    return 0;
  }
}
