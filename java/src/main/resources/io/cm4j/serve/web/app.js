// The cm4j page: a generate form, a gallery and a live view of the service. Plain browser
// JavaScript, no build step and no network beyond this server.
'use strict';

const $ = (id) => document.getElementById(id);
let classNames = [];   // label i at index i, when the model has the 1000 ImageNet classes
let numClasses = 0;

function setStatus(text, isError) {
  $('status').textContent = text;
  $('status').className = isError ? 'error' : '';
}

function className(label) {
  return classNames[label] !== undefined ? classNames[label] : 'class ' + label;
}

// The class picker: the search box filters the list, by name or label number.
function fillClasses() {
  const query = $('class-search').value.trim().toLowerCase();
  const select = $('class-select');
  const previous = select.value;
  select.replaceChildren();
  for (let i = 0; i < numClasses; i++) {
    const name = className(i);
    if (query && !name.toLowerCase().includes(query) && String(i) !== query) {
      continue;
    }
    const option = document.createElement('option');
    option.value = String(i);
    option.textContent = i + ': ' + name;
    select.append(option);
  }
  const keep = [...select.options].find((o) => o.value === previous);
  if (keep) {
    select.value = previous;
  } else if (select.options.length > 0) {
    select.selectedIndex = 0;
  }
}

async function loadModel() {
  const health = await (await fetch('health')).json();
  numClasses = health.num_class_embeds;
  $('model').textContent = health.image_size + 'x' + health.image_size + ' on '
    + health.device + ' ' + health.dtype + ', up to ' + health.max_batch + ' images per pass';
  $('steps').max = health.max_steps;
  $('batch').max = health.queue_capacity;
  if (numClasses === 1000) {
    const text = await (await fetch('imagenet-classes.txt')).text();
    classNames = text.split('\n');
  }
  if (numClasses === 0) {
    $('class-search').disabled = true;
    $('class-select').disabled = true;
  }
  fillClasses();
}

// The request body for the form's settings and seed.
function body(seed) {
  const b = { seed: seed };
  if (numClasses > 0 && $('class-select').value !== '') {
    b.class = Number($('class-select').value);
  }
  const timesteps = $('timesteps').value.trim();
  if (timesteps) {
    b.timesteps = timesteps.split(',').map((t) => Number(t.trim()));
  } else {
    b.steps = Number($('steps').value);
  }
  return b;
}

function addCard(url, settings, headers, millis) {
  const card = document.createElement('div');
  card.className = 'card';
  const img = document.createElement('img');
  img.src = url;
  img.alt = settings;
  const label = headers.get('X-Cm4j-Class');
  const caption = document.createElement('div');
  caption.textContent = (label !== null ? label + ': ' + (headers.get('X-Cm4j-Class-Name')
    || className(Number(label))) : 'unconditional') + ', seed ' + headers.get('X-Cm4j-Seed')
    + ', t ' + headers.get('X-Cm4j-Timesteps') + ', ' + millis.toFixed(0) + ' ms (server '
    + headers.get('X-Cm4j-Latency-Ms') + ' ms)';
  card.append(img, caption);
  card.dataset.seed = headers.get('X-Cm4j-Seed');
  card.dataset.label = label === null ? '' : label;
  $('gallery').prepend(card);
  return card;
}

async function generateOne(seed) {
  const request = body(seed);
  const started = performance.now();
  const response = await fetch('generate', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(request),
  });
  if (!response.ok) {
    const error = await response.json().catch(() => ({ error: response.statusText }));
    throw new Error(response.status + ': ' + error.error);
  }
  const blob = await response.blob();
  addCard(URL.createObjectURL(blob), JSON.stringify(request), response.headers,
    performance.now() - started);
}

async function generate(event) {
  event.preventDefault();
  const seed = Number($('seed').value);
  const n = Math.max(1, Number($('batch').value));
  setStatus('generating ' + n + (n === 1 ? ' image' : ' images') + '...');
  $('generate-button').disabled = true;
  const started = performance.now();
  const results = await Promise.allSettled(
    Array.from({ length: n }, (_, i) => generateOne(seed + i)));
  $('generate-button').disabled = false;
  const failed = results.filter((r) => r.status === 'rejected');
  if (failed.length > 0) {
    setStatus(failed.length + ' of ' + n + ' failed: ' + failed[0].reason.message, true);
  } else {
    setStatus(n + (n === 1 ? ' image' : ' images') + ' in '
      + (performance.now() - started).toFixed(0) + ' ms');
  }
}

// The live service view: /health every second; images/s from the change of its counter.
const rates = [];
let last = null;

function drawRates() {
  const canvas = $('rate-chart');
  const g = canvas.getContext('2d');
  g.clearRect(0, 0, canvas.width, canvas.height);
  const top = Math.max(1, ...rates);
  const w = canvas.width / 60;
  g.fillStyle = '#4a7a96';
  rates.forEach((r, i) => {
    const h = (r / top) * (canvas.height - 2);
    g.fillRect(i * w, canvas.height - h, Math.max(1, w - 1), h);
  });
}

async function poll() {
  try {
    const h = await (await fetch('health')).json();
    const now = performance.now();
    if (last !== null) {
      const rate = (h.images - last.images) / ((now - last.at) / 1000);
      rates.push(Math.max(0, rate));
      if (rates.length > 60) {
        rates.shift();
      }
      $('m-rate').textContent = rate.toFixed(1);
      drawRates();
    }
    last = { images: h.images, at: now };
    $('m-device').textContent = h.device + ' ' + h.dtype;
    $('m-queued').textContent = h.queued;
    $('m-progress').textContent = h.in_progress;
    $('m-batch').textContent = h.images_per_pass_mean.toFixed(2) + ' (max '
      + h.images_per_pass_max + ')';
    $('m-p50').textContent = h.latency_ms_p50.toFixed(1) + ' ms';
    $('m-p99').textContent = h.latency_ms_p99.toFixed(1) + ' ms';
    $('m-completed').textContent = h.completed;
    $('m-rejected').textContent = h.rejected;
    $('m-connections').textContent = h.connections;
  } catch (e) {
    $('m-device').textContent = 'unreachable';
  }
}

function showTab(name) {
  document.querySelectorAll('.tab').forEach((t) => t.classList.toggle('active',
    t.dataset.tab === name));
  document.querySelectorAll('.panel').forEach((p) => p.classList.toggle('active',
    p.id === name));
}

document.querySelectorAll('.tab').forEach((t) => t.addEventListener('click',
  () => showTab(t.dataset.tab)));
$('class-search').addEventListener('input', fillClasses);
$('generate-form').addEventListener('submit', generate);
loadModel().catch((e) => setStatus('cannot reach the server: ' + e.message, true));
poll();
setInterval(poll, 1000);
