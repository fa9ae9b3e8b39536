package io.cm4j.spark;

import java.io.IOException;
import org.apache.hadoop.fs.ChecksumFileSystem;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.io.BytesWritable;
import org.apache.hadoop.io.Text;
import org.apache.hadoop.mapreduce.RecordWriter;
import org.apache.hadoop.mapreduce.TaskAttemptContext;
import org.apache.hadoop.mapreduce.lib.output.FileOutputFormat;
import org.apache.hadoop.mapreduce.lib.output.PathOutputCommitter;

/**
 * Writes each (id, PNG bytes) record as the file {@code ID.png}, in the task attempt's work
 * folder of the output committer: a task's images reach the output folder only when Spark
 * commits the task, and the job's only when it commits the job, so a failed or speculative
 * attempt leaves nothing behind.
 */
public final class PngOutputFormat extends FileOutputFormat<Text, BytesWritable> {
  @Override
  public RecordWriter<Text, BytesWritable> getRecordWriter(TaskAttemptContext context)
      throws IOException {
    Path dir = ((PathOutputCommitter) getOutputCommitter(context)).getWorkPath();
    FileSystem fs = dir.getFileSystem(context.getConfiguration());
    // no .ID.png.crc beside each image on a local file system
    FileSystem files = fs instanceof ChecksumFileSystem c ? c.getRawFileSystem() : fs;
    return new RecordWriter<>() {
      @Override
      public void write(Text id, BytesWritable png) throws IOException {
        try (FSDataOutputStream out = files.create(new Path(dir, id + ".png"), false)) {
          out.write(png.getBytes(), 0, png.getLength());
        }
      }

      @Override
      public void close(TaskAttemptContext ignored) {}
    };
  }
}
