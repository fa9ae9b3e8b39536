/**
 * cm4j as a service: {@link io.cm4j.serve.GenerationService} shares one UNet between any
 * number of threads, batching their requests' passes (each request keeps its own seed,
 * labels and schedule, and gets the images it would get alone), with futures, cancellation,
 * deadlines, a bounded queue and {@link io.cm4j.serve.ServiceStats}; and
 * {@link io.cm4j.serve.GenerationServer}, a JDK-only HTTP demo in front of it
 * ({@code cm4j serve}).
 */
package io.cm4j.serve;
