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
  imageSize = health.image_size;
  editImage.width = editImage.height = imageSize;
  editMask.width = editMask.height = imageSize;
  resetMask();
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
  const edit = document.createElement('button');
  edit.type = 'button';
  edit.className = 'edit-this';
  edit.textContent = 'edit';
  edit.addEventListener('click', () => {
    editFrom(img);
    showTab('edit');
  });
  card.append(img, caption, edit);
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

// The edit tab: an input image at the model's size, a mask painted over it (white =
// generate), the task's result beside it.
let imageSize = 64;
const editImage = document.createElement('canvas');  // the input, imageSize square
const editMask = document.createElement('canvas');   // black = keep, white = generate
let hasImage = false;
// The mask is read back on every brush stroke: ask for a canvas kept in memory for that.
const maskContext = () => editMask.getContext('2d', { willReadFrequently: true });

function resetMask() {
  const g = maskContext();
  g.fillStyle = '#000';
  g.fillRect(0, 0, imageSize, imageSize);
  drawPaint();
}

function drawPaint() {
  const canvas = $('paint');
  const g = canvas.getContext('2d');
  g.imageSmoothingEnabled = false;
  g.fillStyle = '#ddd';
  g.fillRect(0, 0, canvas.width, canvas.height);
  if (hasImage) {
    g.drawImage(editImage, 0, 0, canvas.width, canvas.height);
  }
  // The mask's white as translucent red over the image.
  const m = maskContext().getImageData(0, 0, imageSize, imageSize);
  const cell = canvas.width / imageSize;
  g.fillStyle = 'rgba(255, 0, 0, 0.45)';
  for (let y = 0; y < imageSize; y++) {
    for (let x = 0; x < imageSize; x++) {
      if (m.data[4 * (y * imageSize + x)] > 127) {
        g.fillRect(x * cell, y * cell, cell, cell);
      }
    }
  }
}

// Center-crops a square of the source and scales it to the model's size.
function setEditImage(source, width, height) {
  const side = Math.min(width, height);
  const g = editImage.getContext('2d');
  g.imageSmoothingEnabled = true;
  g.clearRect(0, 0, imageSize, imageSize);
  g.drawImage(source, (width - side) / 2, (height - side) / 2, side, side, 0, 0, imageSize,
    imageSize);
  hasImage = true;
  resetMask();
}

function editFrom(img) {
  setEditImage(img, img.naturalWidth, img.naturalHeight);
  $('edit-status').textContent = 'from the gallery: ' + img.alt;
}

let painting = false;

function paintAt(event) {
  const canvas = $('paint');
  const r = canvas.getBoundingClientRect();
  const x = ((event.clientX - r.left) / r.width) * imageSize;
  const y = ((event.clientY - r.top) / r.height) * imageSize;
  const g = maskContext();
  g.fillStyle = '#fff';
  g.beginPath();
  g.arc(x, y, Number($('brush').value) / 2, 0, 2 * Math.PI);
  g.fill();
  drawPaint();
}

// Shows an edit's failure (the server unreachable, an unreadable file) in the edit status line.
function editFailed(e) {
  $('edit-status').textContent = 'failed: ' + e.message;
  $('edit-status').className = 'error';
}

async function runEdit(event) {
  event.preventDefault();
  try {
    await edit();
  } catch (e) {
    editFailed(e);
  }
}

async function edit() {
  const status = $('edit-status');
  if (!hasImage) {
    status.textContent = 'no image yet: upload one or take one from the gallery';
    status.className = 'error';
    return;
  }
  const task = $('edit-task').value;
  const b = { image: editImage.toDataURL('image/png'), seed: Number($('edit-seed').value) };
  if (task === 'inpaint') {
    b.mask = editMask.toDataURL('image/png');
  }
  if (task === 'denoise') {
    b.sigma = Number($('edit-sigma').value);
  } else if ($('edit-steps').value) {
    b.steps = Number($('edit-steps').value);
  }
  if (numClasses > 0 && $('class-select').value !== '') {
    b.class = Number($('class-select').value);
  }
  window.lastEdit = { task: task, body: b };
  status.textContent = task + '...';
  status.className = '';
  const started = performance.now();
  const response = await fetch('edit/' + task, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(b),
  });
  if (!response.ok) {
    const error = await response.json().catch(() => ({ error: response.statusText }));
    status.textContent = response.status + ': ' + error.error;
    status.className = 'error';
    return;
  }
  const blob = await response.blob();
  const previous = $('edit-result').src;
  $('edit-result').src = URL.createObjectURL(blob);
  if (previous.startsWith('blob:')) {
    URL.revokeObjectURL(previous); // the last result's image: nothing else shows it
  }
  const millis = performance.now() - started;
  $('edit-caption').textContent = task + ', seed ' + response.headers.get('X-Cm4j-Seed')
    + ', t ' + response.headers.get('X-Cm4j-Timesteps') + ', ' + millis.toFixed(0) + ' ms';
  status.textContent = task + ' done in ' + millis.toFixed(0) + ' ms';
}

$('edit-file').addEventListener('change', async () => {
  const file = $('edit-file').files[0];
  if (file) {
    try {
      const bitmap = await createImageBitmap(file);
      setEditImage(bitmap, bitmap.width, bitmap.height);
      $('edit-status').textContent = 'uploaded ' + file.name;
      $('edit-status').className = '';
    } catch {
      editFailed(new Error('cannot read ' + file.name + ' as an image'));
    }
  }
});
$('paint').addEventListener('pointerdown', (e) => {
  painting = true;
  paintAt(e);
});
$('paint').addEventListener('pointermove', (e) => {
  if (painting) {
    paintAt(e);
  }
});
window.addEventListener('pointerup', () => {
  painting = false;
});
$('clear-mask').addEventListener('click', resetMask);
$('edit-form').addEventListener('submit', runEdit);

document.querySelectorAll('.tab').forEach((t) => t.addEventListener('click',
  () => showTab(t.dataset.tab)));
$('class-search').addEventListener('input', fillClasses);
$('generate-form').addEventListener('submit', generate);
loadModel().catch((e) => setStatus('cannot reach the server: ' + e.message, true));
poll();
setInterval(poll, 1000);
