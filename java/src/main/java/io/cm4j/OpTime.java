package io.cm4j;

import java.util.Objects;

/**
 * One op of a profiled forward pass ({@link UNet#opProfile()}): its name in the model
 * ({@code up_blocks.2.resnets.0.conv1}, {@code mid_block.attentions.0}, ...) and the
 * milliseconds it took, waited for on its own.
 */
public record OpTime(String name, double millis) {
  public OpTime {
    Objects.requireNonNull(name, "name");
  }
}
