#include "unet_graph.h"

#include <cmath>

#include "cm4j.h"

namespace cm4j {
namespace {

// An activation [B, c, h, w] living in a plan buffer.
struct Act {
  int buf = -1;
  int c = 0, h = 0, w = 0;
};

// Rows [B, n] that are columns offset..offset+n of a buffer [B, stride]: one resnet's
// time_emb_proj output inside the buffer that holds every resnet's.
struct Slice {
  int buf = -1;
  int offset = 0;
  int stride = 0;
};

struct ConvOpt {
  const Act* x2 = nullptr;  // second source, concatenated after x along channels
  int kernel = 3;
  int stride = 1;
  bool upsample = false;    // nearest 2x before the conv
  Slice bias_bc;            // [B, c_out] added per image (time embedding)
  int residual = -1;        // buffer [B, c_out, h_out, w_out]
  float out_scale = 1.0f;
  int norm = -1;            // buffer [B, 3, c_in]: a group norm applied to the input (ConvArgs::norm)
  bool norm_silu = false;   // with norm: then SiLU
};

enum class Resample { None, Down, Up };

class Net {
 public:
  Net(const UNetConfig& c, const WeightStore* w, const GraphOptions& o,
      std::vector<ParamSpec>* specs, Plan* plan, std::vector<Tap>* taps)
      : cfg_(c), w_(w), batch_(o.batch), capture_(o.capture_taps), backend_(o.backend),
        specs_(specs), plan_(plan), taps_(taps) {
    // The fused time_emb_proj's width, needed before the walk reaches the resnets: the sum
    // of the parts the declaring walk found.
    if (w_)
      for (const ParamSpec& s : w_->specs())
        if (s.kind == ParamKind::TimeProjWeight) time_proj_rows_ += static_cast<int>(s.shape[0]);
  }

  Status build();

 private:
  // ---- parameters -------------------------------------------------------------------
  void declare(const std::string& name, std::vector<int64_t> shape, ParamKind kind,
               const std::string& target = "", int part = 0, const ConvParams* use = nullptr) {
    specs_->push_back({name, std::move(shape), kind, target, part,
                       use ? std::optional<ConvParams>(*use) : std::nullopt});
  }
  const Weight* prepared(const std::string& target) const {
    return w_ ? w_->prepared(target) : nullptr;
  }
  const float* vec(const std::string& name) const { return w_ ? w_->vec(name) : nullptr; }

  // ---- activations --------------------------------------------------------------------
  Act act(int c, int h, int w) {
    return {plan_->buffer(static_cast<size_t>(batch_) * c * h * w), c, h, w};
  }
  // A time-path vector [B, n] (fp32 on every backend).
  void tap(const std::string& name, int buf, int n) {
    if (!capture_) return;
    size_t index = taps_->size();
    size_t count = static_cast<size_t>(batch_) * n;
    taps_->push_back({name, {batch_, n}, {}});
    plan_->op("tap." + name, {buf}, [=](ExecContext& ctx) {
      Tap& t = (*ctx.taps)[index];
      t.data.resize(count);
      return ctx.backend->download(t.data.data(), ctx.ptr(buf), count);
    });
  }
  // An activation, in whatever storage the backend keeps it.
  void tap(const std::string& name, const Act& a) {
    if (!capture_) return;
    size_t index = taps_->size();
    ActShape shape{batch_, a.c, a.h, a.w};
    taps_->push_back({name, {batch_, a.c, a.h, a.w}, {}});
    int buf = a.buf;
    plan_->op("tap." + name, {buf}, [=](ExecContext& ctx) {
      Tap& t = (*ctx.taps)[index];
      t.data.resize(shape.numel());
      return ctx.backend->download_activation(t.data.data(), ctx.ptr(buf), shape);
    });
  }

  // ---- ops ----------------------------------------------------------------------------
  ConvParams conv_params(const Act& x, int c_out, const ConvOpt& o) const;
  Act conv(const std::string& name, const Act& x, int c_out, const ConvOpt& o, bool declare_params = true);
  Act group_norm(const std::string& name, const Act& x, const Act* x2, int groups, bool silu,
                 Slice scale_shift = {}, int out_buf = -1, bool declare_params = true,
                 int coeffs_buf = -1);
  Act norm_for_conv(const std::string& name, const Act& x, const Act* x2, int groups, bool silu,
                    Slice scale_shift, int c_out, ConvOpt* o, int out_buf = -1);
  Slice time_proj(const std::string& name, int n);
  void time_projections();
  Act resnet(const std::string& name, const Act& x, const Act* skip, int c_out,
             Resample resample = Resample::None, float output_scale = 1.0f);
  Act attention(const std::string& name, const Act& x, int groups, float rescale);
  Act pool_or_upsample(const Act& x, Resample r);
  void time_embedding();
  void time_embedding_taps();

  const UNetConfig& cfg_;
  const WeightStore* w_;
  int batch_;
  bool capture_;
  const Backend* backend_;  // null: no group norm is fused into a conv
  std::vector<ParamSpec>* specs_;
  Plan* plan_;
  std::vector<Tap>* taps_;
  int timestep_ = -1;  // [B]
  int emb_ = -1;  // [B, time_embed_dim]: time + class embedding, input of every time_emb_proj
  int time_proj_ = -1;      // [B, time_proj_rows_]: every resnet's time_emb_proj(silu(emb))
  int time_proj_rows_ = 0;  // their output widths summed
  int time_proj_used_ = 0;  // columns handed out so far, in resnet order
  int time_proj_parts_ = 0; // resnets declared so far: the part index of the next one
  Status error_;
};

ConvParams Net::conv_params(const Act& x, int c_out, const ConvOpt& o) const {
  ConvParams p;
  p.batch = batch_;
  p.c_in1 = x.c;
  p.c_in2 = o.x2 ? o.x2->c : 0;
  p.h_in = x.h;
  p.w_in = x.w;
  p.c_out = c_out;
  p.kernel = o.kernel;
  p.stride = o.stride;
  p.pad = o.kernel / 2;
  p.upsample = o.upsample;
  p.out_scale = o.out_scale;
  p.norm_silu = o.norm >= 0 && o.norm_silu;
  return p;
}

Act Net::conv(const std::string& name, const Act& x, int c_out, const ConvOpt& o, bool declare_params) {
  const ConvParams p = conv_params(x, c_out, o);
  if (declare_params) {
    declare(name + ".weight", {c_out, p.c_in1 + p.c_in2, o.kernel, o.kernel}, ParamKind::Conv, name,
            0, &p);
    declare(name + ".bias", {c_out}, ParamKind::Vector);
  }
  Act y = act(c_out, p.h_out(), p.w_out());
  ConvArgs a;
  a.weight = prepared(name);
  a.bias = vec(name + ".bias");
  int src1 = x.buf, src2 = o.x2 ? o.x2->buf : -1, res = o.residual, norm = o.norm, dst = y.buf;
  Slice bias_bc = o.bias_bc;
  plan_->op(name, {src1, src2, bias_bc.buf, res, norm, dst}, [=](ExecContext& ctx) {
    ConvArgs args = a;
    args.src1 = ctx.ptr(src1);
    args.src2 = src2 >= 0 ? ctx.ptr(src2) : nullptr;
    if (bias_bc.buf >= 0) {
      args.bias_bc = ctx.ptr(bias_bc.buf) + bias_bc.offset;
      args.bias_bc_stride = bias_bc.stride;
    }
    args.residual = res >= 0 ? ctx.ptr(res) : nullptr;
    args.norm = norm >= 0 ? ctx.ptr(norm) : nullptr;
    args.dst = ctx.ptr(dst);
    return ctx.backend->conv2d(p, args);
  });
  return y;
}

// GroupNorm(name) over cat(x, x2); scale_shift holds [B, 2C] (scale, shift) rows. With
// coeffs_buf, only its statistics: each channel's affine map into that buffer [B, 3, C]
// (GroupNormArgs::coeffs), which is also the returned Act's buffer.
Act Net::group_norm(const std::string& name, const Act& x, const Act* x2, int groups, bool silu,
                    Slice scale_shift, int out_buf, bool declare_params, int coeffs_buf) {
  int c = x.c + (x2 ? x2->c : 0);
  if (declare_params) {
    declare(name + ".weight", {c}, ParamKind::Vector);
    declare(name + ".bias", {c}, ParamKind::Vector);
  }
  if (coeffs_buf >= 0) out_buf = coeffs_buf;
  Act y{out_buf >= 0 ? out_buf : plan_->buffer(static_cast<size_t>(batch_) * c * x.h * x.w), c, x.h, x.w};
  GroupNormParams p;
  p.batch = batch_;
  p.channels = c;
  p.hw = x.h * x.w;
  p.groups = groups;
  p.eps = cfg_.norm_eps;
  p.silu = silu;
  const float* gamma = vec(name + ".weight");
  const float* beta = vec(name + ".bias");
  int src1 = x.buf, src2 = x2 ? x2->buf : -1, c1 = x.c, dst = y.buf;
  bool coeffs = coeffs_buf >= 0;
  Slice ss = scale_shift;
  plan_->op(name, {src1, src2, ss.buf, dst}, [=](ExecContext& ctx) {
    GroupNormArgs a;
    a.x = ctx.ptr(src1);
    a.x2 = src2 >= 0 ? ctx.ptr(src2) : nullptr;
    a.c1 = src2 >= 0 ? c1 : 0;
    a.gamma = gamma;
    a.beta = beta;
    if (ss.buf >= 0) {
      a.scale = ctx.ptr(ss.buf) + ss.offset;
      a.shift = a.scale + p.channels;
      a.scale_stride = ss.stride;
    }
    (coeffs ? a.coeffs : a.y) = ctx.ptr(dst);
    return ctx.backend->group_norm(p, a);
  });
  return y;
}

// The input of conv(.., c_out, *o) when it starts with group_norm(name) of cat(x, x2). When
// the backend fuses the norm into that conv, the norm only takes its statistics, *o reads
// x and x2 raw and normalizes them as it packs them, and x is returned: the normalized
// tensor is never written. Else the normalized tensor (in out_buf when set).
Act Net::norm_for_conv(const std::string& name, const Act& x, const Act* x2, int groups, bool silu,
                       Slice scale_shift, int c_out, ConvOpt* o, int out_buf) {
  ConvOpt fused = *o;
  fused.x2 = x2;
  ConvParams asked = conv_params(x, c_out, fused);
  asked.norm_silu = silu;  // the conv as it would run with the norm fused
  if (backend_ == nullptr || !backend_->conv_fuses_norm(asked))
    return group_norm(name, x, x2, groups, silu, scale_shift, out_buf);
  const int c = x.c + (x2 ? x2->c : 0);
  fused.norm = plan_->buffer(static_cast<size_t>(batch_) * 3 * c);  // [B, 3, C]
  fused.norm_silu = silu;
  group_norm(name, x, x2, groups, silu, scale_shift, -1, true, fused.norm);
  *o = fused;
  return x;
}

// Resnet `name`'s time_emb_proj(silu(emb)) [B, n]: its columns of the one linear that
// time_projections() runs for every resnet (checkpoint keys stay per resnet; the weights
// are stacked when bound).
Slice Net::time_proj(const std::string& name, int n) {
  int k = cfg_.time_embed_dim();
  declare(name + ".weight", {n, k}, ParamKind::TimeProjWeight, "time_emb_projs", time_proj_parts_);
  declare(name + ".bias", {n}, ParamKind::TimeProjBias, "time_emb_projs", time_proj_parts_);
  ++time_proj_parts_;
  Slice s{time_proj_, time_proj_used_, time_proj_rows_};
  time_proj_used_ += n;
  return s;
}

// Every resnet's time_emb_proj(silu(emb)) as one linear: [B, time_embed_dim] -> [B, sum n].
void Net::time_projections() {
  int k = cfg_.time_embed_dim();
  int n = time_proj_rows_;
  time_proj_ = plan_->buffer(static_cast<size_t>(batch_) * n);
  if (n == 0) return;  // the declaring walk: no weights, no rows yet
  LinearParams p{batch_, n, k, /*silu_input=*/true, /*silu_output=*/false};
  const Weight* wt = prepared("time_emb_projs");
  const float* bias = vec("time_emb_projs.bias");
  int emb = emb_, out = time_proj_;
  plan_->op("time_emb_proj", {emb, out}, [=](ExecContext& ctx) {
    LinearArgs a;
    a.x = ctx.ptr(emb);
    a.weight = wt;
    a.bias = bias;
    a.y = ctx.ptr(out);
    return ctx.backend->linear(p, a);
  });
}

Act Net::pool_or_upsample(const Act& x, Resample r) {
  bool down = r == Resample::Down;
  Act y = down ? act(x.c, x.h / 2, x.w / 2) : act(x.c, x.h * 2, x.w * 2);
  int src = x.buf, dst = y.buf, b = batch_, c = x.c, h = x.h, w = x.w;
  plan_->op(down ? "avg_pool2" : "upsample_nearest2", {src, dst}, [=](ExecContext& ctx) {
    return down ? ctx.backend->avg_pool2(ctx.ptr(src), ctx.ptr(dst), b, c, h, w)
                : ctx.backend->upsample_nearest2(ctx.ptr(src), ctx.ptr(dst), b, c, h, w);
  });
  return y;
}

// diffusers ResnetBlock2D:
//   h = conv1(resample(silu(norm1(x)))) (+ temb when "default")
//   h = conv2(silu(norm2(h) (* (1 + scale) + shift when "scale_shift")))
//   out = (shortcut(resample(x)) + h) / output_scale
Act Net::resnet(const std::string& name, const Act& x, const Act* skip, int c_out,
                Resample resample, float output_scale) {
  int c_in = x.c + (skip ? skip->c : 0);
  ConvOpt o1;
  o1.upsample = resample == Resample::Up;
  Act conv1_in;
  if (resample == Resample::Down) {  // the pool sits between the norm and the conv
    Act n1 = group_norm(name + ".norm1", x, skip, cfg_.norm_num_groups, /*silu=*/true);  // [B, c_in, H, W]
    conv1_in = pool_or_upsample(n1, Resample::Down);  // [B, c_in, H/2, W/2]
  } else {
    conv1_in = norm_for_conv(name + ".norm1", x, skip, cfg_.norm_num_groups, /*silu=*/true, Slice{},
                             c_out, &o1);  // [B, c_in, H, W] (normalized, or x with o1.norm)
  }
  Slice temb = time_proj(name + ".time_emb_proj", cfg_.scale_shift ? 2 * c_out : c_out);
  if (!cfg_.scale_shift) o1.bias_bc = temb;
  Act h = conv(name + ".conv1", conv1_in, c_out, o1);  // [B, c_out, H', W']
  ConvOpt o2;
  Act conv2_in = norm_for_conv(name + ".norm2", h, nullptr, cfg_.norm_num_groups, /*silu=*/true,
                               cfg_.scale_shift ? temb : Slice{}, c_out, &o2, /*out_buf=*/h.buf);

  int residual;
  if (c_in != c_out) {
    ConvOpt os;
    os.x2 = skip;
    os.kernel = 1;
    Act shortcut_in = x;
    if (resample == Resample::Down) shortcut_in = pool_or_upsample(x, Resample::Down);
    os.upsample = resample == Resample::Up;
    residual = conv(name + ".conv_shortcut", shortcut_in, c_out, os).buf;  // [B, c_out, H', W']
  } else if (skip) {
    error_ = {CM4J_ERR_UNSUPPORTED, name + ": a skip connection without conv_shortcut"};
    residual = x.buf;
  } else {
    residual = resample == Resample::None ? x.buf : pool_or_upsample(x, resample).buf;
  }
  o2.residual = residual;
  o2.out_scale = 1.0f / output_scale;
  return conv(name + ".conv2", conv2_in, c_out, o2);
}

// diffusers Attention (from the deprecated attention block), residual included:
//   out = (to_out(softmax(q k^T / sqrt(d)) v) + x) / rescale, q/k/v from group_norm(x).
Act Net::attention(const std::string& name, const Act& x, int groups, float rescale) {
  int c = x.c;
  int dim_head = cfg_.head_dim(c);
  ConvOpt o;
  o.kernel = 1;
  Act normed = groups > 0 ? norm_for_conv(name + ".group_norm", x, nullptr, groups, false, Slice{},
                                          3 * c, &o)
                          : x;
  const char* parts[] = {"to_q", "to_k", "to_v"};
  for (int i = 0; i < 3; ++i) {
    declare(name + "." + parts[i] + ".weight", {c, c}, ParamKind::QkvWeight, name + ".to_qkv", i);
    declare(name + "." + parts[i] + ".bias", {c}, ParamKind::QkvBias, name + ".to_qkv", i);
  }
  Act qkv = conv(name + ".to_qkv", normed, 3 * c, o, /*declare_params=*/false);  // [B, 3C, HW]

  Act attn = act(c, x.h, x.w);  // [B, C, HW]
  AttentionParams p;
  p.batch = batch_;
  p.channels = c;
  p.hw = x.h * x.w;
  p.heads = c / dim_head;
  p.dim_head = dim_head;
  p.scale = 1.0f / std::sqrt(static_cast<float>(dim_head));
  int src = qkv.buf, dst = attn.buf;
  plan_->op(name, {src, dst}, [=](ExecContext& ctx) {
    AttentionArgs a;
    a.qkv = ctx.ptr(src);
    a.out = ctx.ptr(dst);
    return ctx.backend->attention(p, a);
  });

  declare(name + ".to_out.0.weight", {c, c}, ParamKind::Conv, name + ".to_out.0");
  declare(name + ".to_out.0.bias", {c}, ParamKind::Vector);
  ConvOpt out;
  out.kernel = 1;
  out.residual = x.buf;
  out.out_scale = 1.0f / rescale;
  return conv(name + ".to_out.0", attn, c, out, /*declare_params=*/false);
}

// emb = linear_2(silu(linear_1(sinusoid(t)))) + class_embedding[labels], one backend call.
void Net::time_embedding() {
  int c0 = cfg_.block_out_channels[0];
  int dim = cfg_.time_embed_dim();
  declare("time_embedding.linear_1.weight", {dim, c0}, ParamKind::Linear, "time_embedding.linear_1");
  declare("time_embedding.linear_1.bias", {dim}, ParamKind::Vector);
  declare("time_embedding.linear_2.weight", {dim, dim}, ParamKind::Linear, "time_embedding.linear_2");
  declare("time_embedding.linear_2.bias", {dim}, ParamKind::Vector);
  if (cfg_.num_class_embeds > 0)
    declare("class_embedding.weight", {cfg_.num_class_embeds, dim}, ParamKind::Vector);
  if (capture_) time_embedding_taps();

  TimeEmbeddingParams p;
  p.batch = batch_;
  p.channels = c0;
  p.dim = dim;
  p.flip_sin_to_cos = cfg_.flip_sin_to_cos;
  p.freq_shift = cfg_.freq_shift;
  TimeEmbeddingArgs a;
  a.linear_1 = prepared("time_embedding.linear_1");
  a.bias_1 = vec("time_embedding.linear_1.bias");
  a.linear_2 = prepared("time_embedding.linear_2");
  a.bias_2 = vec("time_embedding.linear_2.bias");
  a.class_table = cfg_.num_class_embeds > 0 ? vec("class_embedding.weight") : nullptr;
  int t = timestep_;
  int work = plan_->buffer(static_cast<size_t>(batch_) * (c0 + 2 * dim));  // [B, c0 + 2 dim]
  emb_ = plan_->buffer(static_cast<size_t>(batch_) * dim);                // [B, dim]
  int emb = emb_;
  bool classes = cfg_.num_class_embeds > 0;
  plan_->op("time_embedding", {t, work, emb}, [=](ExecContext& ctx) {
    TimeEmbeddingArgs args = a;
    args.t = ctx.ptr(t);
    args.class_labels = classes ? ctx.class_labels : nullptr;
    args.workspace = ctx.ptr(work);
    args.emb = ctx.ptr(emb);
    return ctx.backend->time_embedding(p, args);
  });
}

// The taps "time_embedding" (linear_2's output before the class embedding joins) and
// "class_embedding": the time path again as separate calls, since the one call above
// keeps neither.
void Net::time_embedding_taps() {
  int c0 = cfg_.block_out_channels[0];
  int dim = cfg_.time_embed_dim();
  int t = timestep_;
  int freq = plan_->buffer(static_cast<size_t>(batch_) * c0);  // [B, c0]
  int b = batch_;
  bool flip = cfg_.flip_sin_to_cos;
  float shift = cfg_.freq_shift;
  plan_->op("time_proj", {t, freq}, [=](ExecContext& ctx) {
    return ctx.backend->timestep_embedding(ctx.ptr(t), ctx.ptr(freq), b, c0, flip, shift);
  });
  int hidden = plan_->buffer(static_cast<size_t>(batch_) * dim);  // [B, dim]
  const Weight* w1 = prepared("time_embedding.linear_1");
  const float* b1 = vec("time_embedding.linear_1.bias");
  plan_->op("time_embedding.linear_1", {freq, hidden}, [=](ExecContext& ctx) {
    LinearArgs a;
    a.x = ctx.ptr(freq);
    a.weight = w1;
    a.bias = b1;
    a.y = ctx.ptr(hidden);
    return ctx.backend->linear({b, dim, c0, false, /*silu_output=*/true}, a);
  });
  int alone = plan_->buffer(static_cast<size_t>(batch_) * dim);  // [B, dim]
  const Weight* w2 = prepared("time_embedding.linear_2");
  const float* b2 = vec("time_embedding.linear_2.bias");
  plan_->op("time_embedding.linear_2", {hidden, alone}, [=](ExecContext& ctx) {
    LinearArgs a;
    a.x = ctx.ptr(hidden);
    a.weight = w2;
    a.bias = b2;
    a.y = ctx.ptr(alone);
    return ctx.backend->linear({b, dim, dim, false, false}, a);
  });
  tap("time_embedding", alone, dim);
  if (cfg_.num_class_embeds > 0) {
    int cls = plan_->buffer(static_cast<size_t>(batch_) * dim);  // [B, dim]
    const float* table = vec("class_embedding.weight");
    plan_->op("class_embedding", {cls}, [=](ExecContext& ctx) {
      return ctx.backend->embedding_lookup(table, ctx.class_labels, ctx.ptr(cls), b, dim);
    });
    tap("class_embedding", cls, dim);
  }
}

Status Net::build() {
  const UNetConfig& c = cfg_;
  int levels = static_cast<int>(c.block_out_channels.size());
  int s = c.sample_size;
  Act sample = act(c.in_channels, s, s);  // [B, in, S, S]
  timestep_ = plan_->buffer(batch_);       // [B]
  ActShape sample_shape{batch_, c.in_channels, s, s};
  int sample_buf = sample.buf, t_buf = timestep_, b = batch_;
  plan_->op("inputs", {sample_buf, t_buf}, [=](ExecContext& ctx) {  // null: on the backend
    Status st = ctx.sample ? ctx.backend->upload_activation(ctx.ptr(sample_buf), ctx.sample, sample_shape)
                           : Status::Ok();
    return st.ok() && ctx.timestep ? ctx.backend->upload(ctx.ptr(t_buf), ctx.timestep, b) : st;
  });
  time_embedding();  // reads the call's class labels from host memory
  const size_t capturable_first = plan_->op_count();
  time_projections();

  Act h = conv("conv_in", sample, c.block_out_channels[0], {});  // [B, c0, S, S]
  tap("conv_in", h);
  std::vector<Act> skips = {h};

  for (int i = 0; i < levels; ++i) {
    std::string name = "down_blocks." + std::to_string(i);
    BlockType type = c.down_block_types[i];
    int out = c.block_out_channels[i];
    for (int j = 0; j < c.layers_per_block; ++j) {
      h = resnet(name + ".resnets." + std::to_string(j), h, nullptr, out);
      if (type == BlockType::AttnDownBlock2D)
        h = attention(name + ".attentions." + std::to_string(j), h, c.norm_num_groups, 1.0f);
      skips.push_back(h);
    }
    if (i < levels - 1) {
      bool resnet_down = type == BlockType::ResnetDownsampleBlock2D ||
                         (type == BlockType::AttnDownBlock2D && c.downsample_type == "resnet");
      if (resnet_down) {
        h = resnet(name + ".downsamplers.0", h, nullptr, out, Resample::Down);
      } else {  // Downsample2D: 3x3 conv, stride 2, padding 1
        ConvOpt o;
        o.stride = 2;
        h = conv(name + ".downsamplers.0.conv", h, out, o);
      }
      skips.push_back(h);
    }
    tap(name, h);
  }

  h = resnet("mid_block.resnets.0", h, nullptr, h.c, Resample::None, c.mid_block_scale_factor);
  if (c.add_attention)
    h = attention("mid_block.attentions.0", h, c.mid_attn_groups(), c.mid_block_scale_factor);
  h = resnet("mid_block.resnets.1", h, nullptr, h.c, Resample::None, c.mid_block_scale_factor);
  tap("mid_block", h);

  for (int i = 0; i < levels; ++i) {
    std::string name = "up_blocks." + std::to_string(i);
    BlockType type = c.up_block_types[i];
    int out = c.block_out_channels[levels - 1 - i];
    for (int j = 0; j < c.layers_per_block + 1; ++j) {
      Act skip = skips.back();
      skips.pop_back();
      h = resnet(name + ".resnets." + std::to_string(j), h, &skip, out);
      if (type == BlockType::AttnUpBlock2D)
        h = attention(name + ".attentions." + std::to_string(j), h, c.norm_num_groups, 1.0f);
    }
    if (i < levels - 1) {
      bool resnet_up = type == BlockType::ResnetUpsampleBlock2D ||
                       (type == BlockType::AttnUpBlock2D && c.upsample_type == "resnet");
      if (resnet_up) {
        h = resnet(name + ".upsamplers.0", h, nullptr, out, Resample::Up);
      } else {  // Upsample2D: nearest 2x, then a 3x3 conv
        ConvOpt o;
        o.upsample = true;
        h = conv(name + ".upsamplers.0.conv", h, out, o);
      }
    }
    tap(name, h);
  }

  if (capture_) {  // the tap is the norm's output, before conv_act's SiLU
    Act pre = group_norm("conv_norm_out", h, nullptr, c.norm_num_groups, false, Slice{}, -1,
                         /*declare_params=*/false);
    tap("conv_norm_out", pre);
  }
  ConvOpt out_opt;
  Act normed = norm_for_conv("conv_norm_out", h, nullptr, c.norm_num_groups, /*silu=*/true, Slice{},
                             c.out_channels, &out_opt);
  Act out = conv("conv_out", normed, c.out_channels, out_opt);  // [B, out, S, S]
  tap("conv_out", out);
  ActShape out_shape{batch_, c.out_channels, s, s};
  int out_buf = out.buf;
  // Between the time embedding and the output, every op is backend work on plan buffers;
  // taps copy to the host, so a plan with taps has nothing to capture.
  if (!capture_) plan_->set_capturable(capturable_first, plan_->op_count());
  plan_->op("output", {out_buf}, [=](ExecContext& ctx) {
    return ctx.output ? ctx.backend->download_activation(ctx.output, ctx.ptr(out_buf), out_shape)
                      : Status::Ok();
  });
  plan_->set_io({sample_buf, t_buf, out_buf});
  if (w_ && error_.ok() && time_proj_used_ != time_proj_rows_)
    error_ = {CM4J_ERR_INTERNAL, "time_emb_proj: the resnets use " +
                                     std::to_string(time_proj_used_) + " rows, the weights hold " +
                                     std::to_string(time_proj_rows_)};
  return error_;
}

}  // namespace

Status build_unet(const UNetConfig& config, const WeightStore* weights, const GraphOptions& opts,
                  std::vector<ParamSpec>* specs, Plan* plan, std::vector<Tap>* taps) {
  // Declaring parameters alone still walks the ops; they go to a scratch plan.
  Plan scratch_plan;
  std::vector<Tap> scratch_taps;
  Net net(config, weights, opts, specs, weights ? plan : &scratch_plan, weights ? taps : &scratch_taps);
  Status s = net.build();
  if (s.ok() && weights) plan->assign_offsets();
  return s;
}

}  // namespace cm4j
