package io.cm4j.cli;

import io.cm4j.Cm4jException;
import io.cm4j.UNet;
import java.io.PrintWriter;
import java.util.Map;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * The {@code cm4j} command line. Each subcommand is one class registered below; they share
 * the exit-code policy of {@link Failures}: 0 success, 2 bad usage or bad input (a one-line
 * message naming the argument or file), 1 any other failure.
 */
@Command(
    name = "cm4j",
    mixinStandardHelpOptions = true,
    versionProvider = Main.Version.class,
    description = "Consistency-model image generation on a native UNet engine.",
    subcommands = {GenerateCommand.class, EditCommand.class, UnetCommand.class, NoiseCommand.class,
        ScheduleCommand.class, DownloadCommand.class, WeightsCommand.class, ServeCommand.class,
        BenchCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {
  @Spec CommandSpec spec;

  /** The environment subcommands read (HF_HOME, HF_ENDPOINT, ...): the process's, or a test's. */
  private final Map<String, String> env;

  private Main(Map<String, String> env) {
    this.env = Map.copyOf(env);
  }

  Map<String, String> env() {
    return env;
  }

  public static void main(String[] args) {
    int code;
    try {
      code = commandLine().execute(args);
    } catch (Throwable t) { // an Error (out of memory, ...): still one line, still an exit code
      System.err.println("cm4j: " + Failures.describe(t));
      code = CommandLine.ExitCode.SOFTWARE;
    }
    System.exit(code);
  }

  /** The command line with cm4j's error handling; tests call execute on it in-process. */
  public static CommandLine commandLine() {
    return commandLine(System.getenv());
  }

  /** Same, with {@code env} in place of the process's environment variables. */
  public static CommandLine commandLine(Map<String, String> env) {
    CommandLine cl = new CommandLine(new Main(env));
    cl.setExecutionExceptionHandler(Failures::handleExecution);
    cl.setParameterExceptionHandler(Failures::handleParameter);
    return cl;
  }

  /** Same, writing to the given streams. */
  public static CommandLine commandLine(PrintWriter out, PrintWriter err) {
    return commandLine(out, err, System.getenv());
  }

  /** Same, writing to the given streams, with {@code env} as the environment variables. */
  public static CommandLine commandLine(PrintWriter out, PrintWriter err,
      Map<String, String> env) {
    CommandLine cl = commandLine(env);
    cl.setOut(out);
    cl.setErr(err);
    return cl;
  }

  @Override
  public void run() {
    throw new ParameterException(spec.commandLine(), "missing a command: expected one of "
        + String.join(", ", spec.subcommands().keySet()));
  }

  /** "cm4j VERSION (native VERSION)". */
  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      String version = Main.class.getPackage().getImplementationVersion();
      String nativeVersion;
      try {
        nativeVersion = "native " + UNet.nativeVersion();
      } catch (Cm4jException e) {
        nativeVersion = e.getMessage();
      }
      return new String[] {"cm4j " + (version == null ? "(development build)" : version)
          + " (" + nativeVersion + ")"};
    }
  }
}
