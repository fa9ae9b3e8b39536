package io.cm4j.weights.pickle;

/**
 * Bounds that keep a hostile pickle from exhausting memory. Lengths declared by opcodes are
 * also checked against the bytes actually left in the stream before anything is allocated, so
 * together these bound the heap a stream can claim to a small multiple of its own size.
 *
 * <p>The defaults leave ample room for weight files: a diffusers state dict of this UNet family
 * (about 700 tensors) runs about 25,000 opcodes, memoizes about 15,000 values, keeps under 20
 * values on the stack and nests marks 3 deep. They also cap what a stream of small opcodes can
 * make the heap hold (each opcode creates at most one small object): tens of megabytes.
 *
 * @param maxMarks deepest nesting of MARK opcodes (open tuples, lists, dicts being filled)
 * @param maxStack most values on the stack at once
 * @param maxMemo most memo entries
 * @param maxOps most opcodes executed
 * @param maxIntBytes longest LONG1/LONG4 integer, in bytes
 */
public record PickleLimits(int maxMarks, int maxStack, int maxMemo, long maxOps,
    int maxIntBytes) {

  /** The limits {@link PickleReader} uses unless told otherwise. */
  public static final PickleLimits DEFAULT =
      new PickleLimits(1_000, 100_000, 500_000, 1_000_000L, 64);
}
