package io.cm4j.cli;

import io.cm4j.Cm4jException;
import io.cm4j.hub.HubException;
import io.cm4j.weights.CheckpointException;
import io.cm4j.weights.OutputException;
import java.io.PrintWriter;
import java.io.StringWriter;
import picocli.CommandLine;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ParseResult;

/**
 * The exit-code policy of every subcommand: 2 for bad usage or bad input (usage errors,
 * unusable files, inputs or configs the engine refuses, Hub failures that are the user's to fix:
 * a wrong model ID, revision or token, offline mode without a cached copy), 1 for anything else
 * (an {@link OutputException}, a disk full, among them: its message is told as it is).
 * The message is one line; the stack trace is printed only with {@code -Dcm4j.debug=true}.
 */
final class Failures {
  private Failures() {}

  static int exitCode(Throwable t) {
    if (t instanceof UsageException || t instanceof CheckpointException) {
      return CommandLine.ExitCode.USAGE;
    }
    if (t instanceof HubException) { // a wrong model ID or revision, offline with no copy...
      return ((HubException) t).isBadInput() ? CommandLine.ExitCode.USAGE
          : CommandLine.ExitCode.SOFTWARE;
    }
    if (t instanceof Cm4jException) {
      switch (((Cm4jException) t).code()) {
        case INVALID_ARGUMENT:
        case UNSUPPORTED:
        case WEIGHTS:
          return CommandLine.ExitCode.USAGE;
        default:
          return CommandLine.ExitCode.SOFTWARE;
      }
    }
    return CommandLine.ExitCode.SOFTWARE;
  }

  /** The one-line message: the exception's own, or its type when it has none. */
  static String describe(Throwable t) {
    String m = t.getMessage();
    boolean ours = t instanceof UsageException || t instanceof CheckpointException
        || t instanceof OutputException || t instanceof Cm4jException
        || t instanceof HubException;
    if (m == null || m.isBlank()) {
      return t.getClass().getSimpleName();
    }
    return ours ? m : t.getClass().getSimpleName() + ": " + m;
  }

  static int handleExecution(Exception ex, CommandLine cl, ParseResult parsed) {
    PrintWriter err = cl.getErr();
    // native messages list problems on indented lines: fold them into one
    String message = describe(ex).replaceAll(":\\s*\\n\\s*", ": ")
        .replaceAll("\\s*\\n\\s*", "; ");
    err.println(cl.getCommandSpec().qualifiedName() + ": " + message);
    if (Boolean.getBoolean("cm4j.debug")) {
      StringWriter trace = new StringWriter();
      ex.printStackTrace(new PrintWriter(trace));
      err.print(trace);
    }
    err.flush();
    return exitCode(ex);
  }

  static int handleParameter(ParameterException ex, String[] args) {
    CommandLine cl = ex.getCommandLine();
    PrintWriter err = cl.getErr();
    err.println(cl.getCommandSpec().qualifiedName() + ": " + ex.getMessage());
    err.println("Try '" + cl.getCommandSpec().qualifiedName() + " --help' for usage.");
    err.flush();
    return CommandLine.ExitCode.USAGE;
  }
}
