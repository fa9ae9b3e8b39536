/**
 * The Hugging Face Hub client: model IDs to local diffusers folders, through the cache shared
 * with Python's {@code huggingface_hub}.
 *
 * <ul>
 *   <li>{@link io.cm4j.hub.ModelLocator#resolve(String)}: a {@code --model} argument (local
 *       path or {@code org/name}) to a local path; a Hub model is downloaded once, then used
 *       from the cache with no request.
 *   <li>{@link io.cm4j.hub.HubClient#downloadModel}: fetch or refresh a ConsistencyModelPipeline
 *       (the {@code download} command); {@link io.cm4j.hub.HubClient#resolveFile}: one file.
 *   <li>{@link io.cm4j.hub.HubCache}: where the cache is and how it is laid out.
 *   <li>{@link io.cm4j.hub.Progress}, {@link io.cm4j.hub.ConsoleProgress}: download progress.
 *   <li>{@link io.cm4j.hub.HubException}: every failure, with a {@code kind} for exit codes.
 * </ul>
 *
 * <p>Environment: {@code HF_HUB_CACHE}, {@code HUGGINGFACE_HUB_CACHE}, {@code HF_HOME},
 * {@code XDG_CACHE_HOME}, {@code HF_ENDPOINT}, {@code HF_TOKEN},
 * {@code HUGGING_FACE_HUB_TOKEN}, {@code HF_TOKEN_PATH}, {@code HF_HUB_OFFLINE},
 * {@code HF_HUB_ETAG_TIMEOUT}, {@code HF_HUB_DOWNLOAD_TIMEOUT}, with huggingface_hub's meaning.
 * Nothing here downloads unless asked to resolve a model ID that the cache lacks.
 */
package io.cm4j.hub;
