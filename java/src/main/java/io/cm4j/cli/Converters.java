package io.cm4j.cli;

import io.cm4j.Device;
import io.cm4j.Precision;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** Option converters shared by subcommands; their messages say what is accepted. */
final class Converters {
  private Converters() {}

  static final class DeviceConverter implements ITypeConverter<Device> {
    @Override
    public Device convert(String value) {
      try {
        return Device.parse(value);
      } catch (IllegalArgumentException e) {
        throw new TypeConversionException(e.getMessage());
      }
    }
  }

  static final class PrecisionConverter implements ITypeConverter<Precision> {
    @Override
    public Precision convert(String value) {
      try {
        return Precision.parse(value);
      } catch (IllegalArgumentException e) {
        throw new TypeConversionException(e.getMessage());
      }
    }
  }
}
