package io.cm4j.serve;

import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * A lock-free histogram of non-negative longs (nanoseconds, batch sizes): exact below 256 (every
 * batch size of a pass, so a full batch of 64 or 128 counts at its bound), then 16 buckets per
 * power of two, so a percentile is within 1/16 (6.25%) of the true value. No dependency
 * (HdrHistogram's idea, in 1,136 buckets of fixed size).
 *
 * <p>Thread-safe: {@link #record} may be called from any thread while another takes a
 * {@link #snapshot}; a snapshot taken during recording may miss the values recorded meanwhile.
 */
public final class Histogram {
  private static final int EXACT = 256; // values below are their own bucket
  private static final int SUB_BITS = 4; // 16 buckets per power of two above EXACT
  private static final int SUB = 1 << SUB_BITS;
  private static final int FIRST_EXP = 8; // log2(EXACT)
  private static final int BUCKETS = EXACT + (63 - FIRST_EXP) * SUB;

  private final AtomicLongArray counts = new AtomicLongArray(BUCKETS);
  private final AtomicLong sum = new AtomicLong();
  private final AtomicLong min = new AtomicLong(Long.MAX_VALUE);
  private final AtomicLong max = new AtomicLong(Long.MIN_VALUE);

  /** Records one value; negative values count as 0. */
  public void record(long value) {
    long v = Math.max(0, value);
    counts.incrementAndGet(bucket(v));
    sum.addAndGet(v);
    min.accumulateAndGet(v, Math::min);
    max.accumulateAndGet(v, Math::max);
  }

  static int bucket(long v) {
    if (v < EXACT) {
      return (int) v;
    }
    int exp = 63 - Long.numberOfLeadingZeros(v); // >= FIRST_EXP
    int sub = (int) (v >>> (exp - SUB_BITS)) & (SUB - 1);
    return EXACT + (exp - FIRST_EXP) * SUB + sub;
  }

  /** The largest value that falls in bucket {@code index}. */
  static long upperBound(int index) {
    if (index < EXACT) {
      return index;
    }
    int exp = (index - EXACT) / SUB + FIRST_EXP;
    int sub = (index - EXACT) % SUB;
    long lower = (1L << exp) + ((long) sub << (exp - SUB_BITS));
    return lower + (1L << (exp - SUB_BITS)) - 1;
  }

  /** The values recorded so far. */
  public Snapshot snapshot() {
    long[] copy = new long[BUCKETS];
    long count = 0;
    for (int i = 0; i < BUCKETS; i++) {
      copy[i] = counts.get(i);
      count += copy[i];
    }
    return new Snapshot(copy, count, sum.get(), count == 0 ? 0 : min.get(),
        count == 0 ? 0 : max.get());
  }

  /** An immutable copy of a histogram. */
  public static final class Snapshot {
    private final long[] counts;
    private final long count;
    private final long sum;
    private final long min;
    private final long max;

    private Snapshot(long[] counts, long count, long sum, long min, long max) {
      this.counts = counts;
      this.count = count;
      this.sum = sum;
      this.min = min;
      this.max = max;
    }

    /** Number of values. */
    public long count() {
      return count;
    }

    public long sum() {
      return sum;
    }

    /** Smallest value, 0 when empty. */
    public long min() {
      return min;
    }

    /** Largest value, 0 when empty. */
    public long max() {
      return max;
    }

    /** Values at or below {@code value}, counted by bucket: exact within 1/16. */
    public long countAtMost(long value) {
      long n = 0;
      for (int i = 0; i < counts.length && upperBound(i) <= value; i++) {
        n += counts[i];
      }
      return n;
    }

    public double mean() {
      return count == 0 ? 0 : (double) sum / count;
    }

    /**
     * The value below or at which a fraction {@code q} of the values lie (q = 0.99: p99): the
     * upper bound of the bucket that holds it, never above {@link #max()}; 0 when empty.
     */
    public long percentile(double q) {
      if (!(q >= 0 && q <= 1)) {
        throw new IllegalArgumentException("expected a fraction in [0, 1], found " + q);
      }
      if (count == 0) {
        return 0;
      }
      long rank = Math.max(1, (long) Math.ceil(q * count)); // 1-based rank of the value
      long seen = 0;
      for (int i = 0; i < counts.length; i++) {
        seen += counts[i];
        if (seen >= rank) {
          return Math.min(Math.max(upperBound(i), min), max);
        }
      }
      return max;
    }
  }
}
