package io.cm4j.spark;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.lit;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.ByteType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.ShortType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * The request table: one image per row, {@code id} (optional), {@code class}, {@code seed},
 * and {@code steps} or {@code timesteps}. {@link #normalize} brings any table to the columns
 * and types the generation reads; a row's own problems (a missing seed, a label out of range)
 * are left for the generation to report in that row, a table's (a column of the wrong type)
 * are refused here.
 */
public final class Requests {
  public static final String ID = "id";
  public static final String CLASS = "class";
  public static final String SEED = "seed";
  public static final String STEPS = "steps";
  public static final String TIMESTEPS = "timesteps";
  /** Where Spark's JSON reader puts a line it cannot parse. */
  static final String CORRUPT = "_corrupt_record";

  /** The columns of a normalized table, in this order, then any others of the input. */
  static final StructType SCHEMA = new StructType()
      .add(ID, DataTypes.StringType)
      .add(CLASS, DataTypes.LongType)
      .add(SEED, DataTypes.LongType)
      .add(STEPS, DataTypes.LongType)
      .add(TIMESTEPS, DataTypes.createArrayType(DataTypes.LongType))
      .add(CORRUPT, DataTypes.StringType);

  private Requests() {}

  /**
   * Reads a request file: JSON lines ({@code .jsonl}, {@code .json}, {@code .ndjson}), one
   * object per line, or Parquet ({@code .parquet}, a file or a folder of parts). A JSON line
   * that does not parse, or whose values have the wrong types, becomes a row that the
   * generation reports as malformed.
   *
   * @throws IllegalArgumentException for another extension, or columns of the wrong type
   */
  public static Dataset<Row> read(SparkSession spark, String file) {
    if (isParquet(file)) {
      return normalize(spark.read().parquet(file));
    }
    return normalize(spark.read().schema(SCHEMA).option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT).json(file));
  }

  /**
   * Whether {@link #read} takes {@code file} as Parquet (else as JSON lines).
   *
   * @throws IllegalArgumentException when the extension is neither
   */
  static boolean isParquet(String file) {
    String name = file.toLowerCase(Locale.ROOT);
    if (name.endsWith(".parquet")) {
      return true;
    }
    if (name.endsWith(".jsonl") || name.endsWith(".json") || name.endsWith(".ndjson")) {
      return false;
    }
    throw new IllegalArgumentException("expected a .jsonl (JSON lines) or .parquet file");
  }

  /**
   * The table with {@code id} a string, {@code class}, {@code seed}, {@code steps} longs and
   * {@code timesteps} an array of longs (each null where the input lacks the column), then the
   * input's other columns.
   *
   * @throws IllegalArgumentException naming a column of a type that is not an integer (or a
   *     string for id, an array of integers for timesteps)
   */
  public static Dataset<Row> normalize(Dataset<Row> requests) {
    StructType in = requests.schema();
    List<Column> columns = new ArrayList<>();
    for (StructField field : SCHEMA.fields()) {
      String name = field.name();
      if (!List.of(in.fieldNames()).contains(name)) {
        columns.add(lit(null).cast(field.dataType()).as(name));
        continue;
      }
      DataType type = in.apply(name).dataType();
      boolean accepted = switch (name) {
        case ID, CORRUPT -> type == DataTypes.StringType || isInteger(type);
        case TIMESTEPS -> type instanceof ArrayType a && isInteger(a.elementType());
        default -> isInteger(type);
      };
      if (!accepted) {
        throw new IllegalArgumentException("column " + name + " is " + type.simpleString()
            + ", expected " + (name.equals(TIMESTEPS) ? "an array of integers"
                : name.equals(ID) ? "a string" : "an integer"));
      }
      columns.add(col(name).cast(field.dataType()).as(name));
    }
    for (String name : in.fieldNames()) {
      if (!List.of(SCHEMA.fieldNames()).contains(name)) {
        columns.add(col(name));
      }
    }
    return requests.select(columns.toArray(Column[]::new));
  }

  private static boolean isInteger(DataType type) {
    return type instanceof LongType || type instanceof IntegerType || type instanceof ShortType
        || type instanceof ByteType;
  }
}
