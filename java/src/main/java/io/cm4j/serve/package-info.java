/**
 * cm4j as a service: {@link io.cm4j.serve.GenerationService} shares one UNet between any
 * number of threads, batching the passes of their generations and edits (each request keeps
 * its own seed, labels and schedule, and gets the images it would get alone), with futures,
 * cancellation, deadlines, a bounded queue and {@link io.cm4j.serve.ServiceStats}; and
 * {@link io.cm4j.serve.GenerationServer}, an HTTP server in front of it ({@code cm4j serve}):
 * the page, the JSON/PNG API and Prometheus metrics, over a JDK-only NIO accepting layer.
 */
package io.cm4j.serve;
