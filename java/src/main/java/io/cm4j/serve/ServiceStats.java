package io.cm4j.serve;

import java.util.Locale;

/**
 * What a {@link GenerationService} has done, read at one moment by
 * {@link GenerationService#stats()}. Counters count requests; histograms hold nanoseconds
 * except {@code batchImages}.
 *
 * <p>The fields are read one after the other while the service runs, so a snapshot taken
 * under load may be off by the requests that changed state meanwhile; each histogram is
 * consistent on its own.
 *
 * @param submitted requests accepted by {@code submit}
 * @param rejected requests refused because the queue was full
 * @param completed requests that produced their images
 * @param images images of the completed requests
 * @param failed requests that ended with an error (a failed forward pass)
 * @param cancelled requests cancelled by their caller or by {@code closeNow}
 * @param deadlineExceeded requests that missed their deadline
 * @param queued requests waiting for their first step now
 * @param inProgress requests between their first and last step now
 * @param queueWait nanoseconds from submit to the start of the first step
 * @param batchImages images in each UNet pass
 * @param compute nanoseconds of each UNet pass
 * @param latency nanoseconds from submit to the result, for completed requests
 */
public record ServiceStats(long submitted, long rejected, long completed, long images,
    long failed,
    long cancelled, long deadlineExceeded, int queued, int inProgress,
    Histogram.Snapshot queueWait, Histogram.Snapshot batchImages, Histogram.Snapshot compute,
    Histogram.Snapshot latency) {

  /** Number of UNet passes run. */
  public long unetPasses() {
    return batchImages.count();
  }

  /** Requests accepted and finished one way or another. */
  public long finished() {
    return completed + failed + cancelled + deadlineExceeded;
  }

  @Override
  public String toString() {
    return String.format(Locale.ROOT, "ServiceStats[submitted %d, rejected %d, completed %d, "
        + "failed %d, cancelled %d, deadline exceeded %d, queued %d, in progress %d; "
        + "UNet passes %d, images/pass mean %.2f max %d; queue wait ms p50 %.2f p99 %.2f; "
        + "compute ms p50 %.2f p99 %.2f; latency ms p50 %.2f p99 %.2f]",
        submitted, rejected, completed, failed, cancelled, deadlineExceeded, queued, inProgress,
        unetPasses(), batchImages.mean(), batchImages.max(), ms(queueWait.percentile(0.5)),
        ms(queueWait.percentile(0.99)), ms(compute.percentile(0.5)),
        ms(compute.percentile(0.99)), ms(latency.percentile(0.5)), ms(latency.percentile(0.99)));
  }

  private static double ms(long nanos) {
    return nanos / 1e6;
  }
}
