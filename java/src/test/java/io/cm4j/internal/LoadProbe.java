package io.cm4j.internal;

/** Run in a child JVM by NativeLibraryTest: loads the library and prints where from. */
public final class LoadProbe {
  private LoadProbe() {}

  public static void main(String[] args) {
    try {
      NativeLibrary.load();
      System.out.println("loaded " + NativeLibrary.loadedFrom() + " version "
          + Cm4jNative.cm4j_version());
    } catch (Exception e) {
      System.out.println("failed " + e.getMessage());
    }
  }
}
