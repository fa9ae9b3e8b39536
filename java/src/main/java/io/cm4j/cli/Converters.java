package io.cm4j.cli;

import io.cm4j.Device;
import io.cm4j.Precision;
import io.cm4j.serve.ImageNetClasses;
import java.util.function.Function;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** Option converters shared by subcommands; their messages say what is accepted. */
final class Converters {
  private Converters() {}

  /**
   * A value parsed by the type's own {@code parse}, whose message (which lists the accepted
   * forms) becomes picocli's. picocli instantiates converters by class, hence a subclass per type.
   */
  private abstract static class Parsing<T> implements ITypeConverter<T> {
    private final Function<String, T> parse;

    Parsing(Function<String, T> parse) {
      this.parse = parse;
    }

    @Override
    public T convert(String value) {
      try {
        return parse.apply(value);
      } catch (IllegalArgumentException e) {
        throw new TypeConversionException(e.getMessage());
      }
    }
  }

  static final class DeviceConverter extends Parsing<Device> {
    DeviceConverter() {
      super(Device::parse);
    }
  }

  /** A class label: a number, or an ImageNet class name ("goldfish", "golden retriever"). */
  static final class ClassLabelConverter extends Parsing<Long> {
    ClassLabelConverter() {
      super(text -> {
        try {
          return Long.parseLong(text.trim()); // its range is checked against the model's
        } catch (NumberFormatException e) {
          return ImageNetClasses.parse(text);
        }
      });
    }
  }

  static final class PrecisionConverter extends Parsing<Precision> {
    PrecisionConverter() {
      super(Precision::parse);
    }
  }
}
