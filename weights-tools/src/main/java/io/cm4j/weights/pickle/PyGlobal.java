package io.cm4j.weights.pickle;

/** A global the allow-list admitted ({@code module.name}); only ever a name, never code. */
public record PyGlobal(String module, String name) {
  /** "module.name", as messages and the allow-list spell it. */
  public String qualifiedName() {
    return module + "." + name;
  }

  @Override
  public String toString() {
    return qualifiedName();
  }
}
