// Fused CPU second-order embedding of the A2U kernel generator (steps 3–4), forward and backward (float32, float64).
// Semantics: models/ops/a2u.py `A2UKernelGenerator._embed`, whose eager lines stay the reference and the fallback:
//   z[b, i, j] = Σ_c LeakyReLU₀.₀₁(GN_u(e_u))[b, c, i, j] · LeakyReLU₀.₀₁(GN_v(e_v))[b, c, i, j] / √C,
// e_u, e_v B×C×h×w (B = N·d: each rank's C maps are one GroupNorm sample), GN_* = GroupNorm with G groups, eps
// and per-channel affine (γ, β). The normalised maps are never materialised:
// - pass 1: per (b, group) mean and rstd of e_u and e_v: two passes over the group's contiguous C/G·h·w values
//   (the sum, then the sums of d = e − mean and d²), float64 totals of short vector partial sums; biased var and
//   rstd = 1/√(max(var, 0) + eps) as torch's GroupNorm, stored in the input dtype (as torch stores them); the
//   normalisation is then y = a·e + b with a = rstd·γ_c, b = β_c − a·mean (torch's fused scale/bias form);
// - pass 2: one task per (b, chunk of ≤ 8 KiB of pixels); a chunk accumulator stays in L1 while the loop over c
//   reads both maps' rows (vectorised along the pixels), so z[b, p] sums the channels in order 0 … C−1.
// Backward (grad of z → grads of e_u, e_v, γ_u, β_u, γ_v, β_v), one task per (b, group), recomputing y and the
// activations from the saved statistics: dy = LReLU'(y) · dz/√C · E_other is written into the grad buffer with
// its per-channel sums Σ dy·e and Σ dy (float64 totals), then the buffer is overwritten with torch's GroupNorm
// input gradient c1·dy + c2·e + c3; γ/β gradients sum the per-(b, c) partials over b in order after the tasks.
// No atomics: results do not depend on the thread count.
#include <torch/library.h>
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <tuple>
#include <vector>

namespace a2u_embedding {
namespace {

using at::Tensor;

// ------------------------------------------------------------------------------------------- vectors
// 256-bit GCC/Clang vector extensions (AVX2 with -march=x86-64-v3); unaligned access through may-alias twins.
typedef float vfloat __attribute__((vector_size(32)));
typedef double vdouble __attribute__((vector_size(32)));
typedef float vfloat_u __attribute__((vector_size(32), aligned(4), may_alias));
typedef double vdouble_u __attribute__((vector_size(32), aligned(8), may_alias));

template <typename T> struct V;
template <> struct V<float> {
  using vec = vfloat;
  static constexpr int L = 8;
  static vec load(const float* p) { return *reinterpret_cast<const vfloat_u*>(p); }
  static void store(float* p, vec v) { *reinterpret_cast<vfloat_u*>(p) = v; }
};
template <> struct V<double> {
  using vec = vdouble;
  static constexpr int L = 4;
  static vec load(const double* p) { return *reinterpret_cast<const vdouble_u*>(p); }
  static void store(double* p, vec v) { *reinterpret_cast<vdouble_u*>(p) = v; }
};

// Sums are accumulated in vectors of T over blocks of kBlock vectors per accumulator, then added lane by lane into
// float64 totals (independent per lane, summed in lane order at the end): each float32 partial sums few terms,
// and the hot loops have no conversions.
constexpr int64_t kBlock = 64;

template <typename T>
struct Total {
  double lane[V<T>::L] = {};
  void add(const typename V<T>::vec& v) {
    for (int l = 0; l < V<T>::L; ++l) lane[l] += double(v[l]);
  }
  double value() const {
    double sum = 0.0;
    for (int l = 0; l < V<T>::L; ++l) sum += lane[l];
    return sum;
  }
};

constexpr double kSlope = 0.01;   // LeakyReLU negative slope

template <typename T>
inline T lrelu(T y) { return y > T(0) ? y : y * T(kSlope); }

// ------------------------------------------------------------------------------------------- checks
struct Geo {
  int64_t b, c, g, cg, p, d;   // samples, channels, groups, channels per group, pixels per map, values per group
};

Geo check_args(const char* op, const Tensor& eu, const Tensor& ev, const Tensor& gu, const Tensor& bu,
               const Tensor& gv, const Tensor& bv, int64_t groups) {
  TORCH_CHECK(eu.dim() == 4 && eu.sizes() == ev.sizes(), op, ": e_u and e_v must be B×C×h×w of one shape, got ",
              eu.sizes(), " and ", ev.sizes());
  const auto dtype = eu.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble, op, ": float32 or float64 only, got ", dtype);
  for (const Tensor* t : {&ev, &gu, &bu, &gv, &bv}) {
    TORCH_CHECK(t->scalar_type() == dtype, op, ": all tensors must have the same dtype, got ", t->scalar_type(),
                " and ", dtype);
    TORCH_CHECK(t->device().is_cpu(), op, ": CPU tensors only");
  }
  TORCH_CHECK(eu.device().is_cpu(), op, ": CPU tensors only");
  const int64_t c = eu.size(1);
  for (const Tensor* t : {&gu, &bu, &gv, &bv})
    TORCH_CHECK(t->dim() == 1 && t->size(0) == c, op, ": GroupNorm weight and bias must have ", c,
                " entries, got ", t->sizes());
  TORCH_CHECK(groups >= 1 && c % groups == 0, op, ": groups must divide the ", c, " channels, got ", groups);
  const int64_t p = eu.size(2) * eu.size(3);
  return Geo{eu.size(0), c, groups, c / groups, p, c / groups * p};
}

// ------------------------------------------------------------------------------------------- statistics
// mean and rstd of x[0 … len): pass 1 the sum, pass 2 the sums of d = x − mean and d² (the first corrects for
// the mean's rounding to T); float64 totals (see kBlock), four independent accumulators per pass.
template <typename T>
void moments(const T* x, int64_t len, double eps, T* mean, T* rstd) {
  using W = V<T>;
  using vec = typename W::vec;
  constexpr int L = W::L, U = 4;
  Total<T> sum_t;
  int64_t i = 0;
  while (i + U * L <= len) {
    vec a[U] = {};
    const int64_t stop = std::min(len, i + kBlock * U * L);
    for (; i + U * L <= stop; i += U * L)
      for (int u = 0; u < U; ++u) a[u] += W::load(x + i + u * L);
    sum_t.add((a[0] + a[1]) + (a[2] + a[3]));
  }
  double sum = sum_t.value();
  for (; i < len; ++i) sum += double(x[i]);
  const double m = len > 0 ? sum / double(len) : 0.0;
  const T mt = T(m);
  Total<T> dsum_t, dsq_t;
  i = 0;
  while (i + U * L <= len) {
    vec a[U] = {}, q[U] = {};
    const int64_t stop = std::min(len, i + kBlock * U * L);
    for (; i + U * L <= stop; i += U * L)
      for (int u = 0; u < U; ++u) {
        const vec d = W::load(x + i + u * L) - mt;
        a[u] += d;
        q[u] += d * d;
      }
    dsum_t.add((a[0] + a[1]) + (a[2] + a[3]));
    dsq_t.add((q[0] + q[1]) + (q[2] + q[3]));
  }
  double dsum = dsum_t.value(), dsq = dsq_t.value();
  for (; i < len; ++i) {
    const double d = double(x[i] - mt);
    dsum += d;
    dsq += d * d;
  }
  const double var = len > 0 ? (dsq - dsum * dsum / double(len)) / double(len) : 0.0;
  *mean = mt;
  *rstd = T(1.0 / std::sqrt(std::max(var, 0.0) + eps));
}

// GroupNorm as y = scale·e + shift for channel c of a sample with group statistics (mean, rstd). One
// out-of-line definition, so the forward and the backward compute bit-identical coefficients.
template <typename T>
__attribute__((noinline)) void affine(T mean, T rstd, T gamma, T beta, T* scale, T* shift) {
  const T a = rstd * gamma;
  *scale = a;
  *shift = beta - a * mean;
}

// stats layout: 4 × B × G = (mean_u, rstd_u, mean_v, rstd_v)
template <typename T>
void group_stats(const T* eu, const T* ev, T* st, const Geo& g, double eps) {
  const int64_t rows = g.b * g.g;
  at::parallel_for(0, 2 * rows, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t which = r / rows, row = r % rows;
      moments((which ? ev : eu) + row * g.d, g.d, eps, st + 2 * which * rows + row, st + (2 * which + 1) * rows + row);
    }
  });
}

// ------------------------------------------------------------------------------------------- forward
template <typename T>
inline void product_row(T* acc, const T* xu, const T* xv, T au, T hu, T av, T hv, int64_t len) {
  using W = V<T>;
  using vec = typename W::vec;
  constexpr int L = W::L;
  const vec zero{}, slope = vec{} + T(kSlope);
  int64_t p = 0;
  for (; p + L <= len; p += L) {
    const vec yu = au * W::load(xu + p) + hu;
    const vec yv = av * W::load(xv + p) + hv;
    const vec eu = yu > zero ? yu : yu * slope;
    const vec ev = yv > zero ? yv : yv * slope;
    W::store(acc + p, W::load(acc + p) + eu * ev);
  }
  for (; p < len; ++p) acc[p] += lrelu(au * xu[p] + hu) * lrelu(av * xv[p] + hv);
}

template <typename T>
void forward_impl(const Tensor& eu, const Tensor& ev, const Tensor& gu, const Tensor& bu, const Tensor& gv,
                  const Tensor& bv, double eps, Tensor& z, Tensor& stats, const Geo& g) {
  const T* up = eu.const_data_ptr<T>();
  const T* vp = ev.const_data_ptr<T>();
  T* st = stats.mutable_data_ptr<T>();
  group_stats(up, vp, st, g, eps);
  const int64_t rows = g.b * g.g;
  // per (b, c): scale and shift of u and v
  std::vector<T> coef(4 * g.b * g.c);
  const T *gup = gu.const_data_ptr<T>(), *bup = bu.const_data_ptr<T>();
  const T *gvp = gv.const_data_ptr<T>(), *bvp = bv.const_data_ptr<T>();
  for (int64_t b = 0; b < g.b; ++b)
    for (int64_t c = 0; c < g.c; ++c) {
      const int64_t row = b * g.g + c / g.cg;
      T* k = coef.data() + 4 * (b * g.c + c);
      affine(st[row], st[rows + row], gup[c], bup[c], k, k + 1);
      affine(st[2 * rows + row], st[3 * rows + row], gvp[c], bvp[c], k + 2, k + 3);
    }
  // chunks of ≤ 8 KiB of pixels (whole maps up to 45×45 in float32: long contiguous row reads), split further when
  // there are fewer (b, chunk) tasks than threads; each z element sums its channels in the same order whatever
  // the split
  constexpr int64_t kChunk = 8192 / int64_t(sizeof(T));
  const int64_t per_sample = std::max<int64_t>(1, (at::get_num_threads() + g.b - 1) / g.b);
  const int64_t chunk = std::min(kChunk, std::max<int64_t>(V<T>::L, (g.p + per_sample - 1) / per_sample));
  const int64_t chunks = (g.p + chunk - 1) / chunk;
  const T root = T(std::sqrt(double(g.c)));
  T* zp = z.mutable_data_ptr<T>();
  at::parallel_for(0, g.b * chunks, 1, [&](int64_t begin, int64_t end) {
    alignas(64) T acc[kChunk];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / chunks, p0 = (task % chunks) * chunk, len = std::min(chunk, g.p - p0);
      std::fill(acc, acc + len, T(0));
      for (int64_t c = 0; c < g.c; ++c) {
        const int64_t off = (b * g.c + c) * g.p + p0;
        const T* k = coef.data() + 4 * (b * g.c + c);
        product_row(acc, up + off, vp + off, k[0], k[1], k[2], k[3], len);
      }
      T* out = zp + b * g.p + p0;
      for (int64_t p = 0; p < len; ++p) out[p] = acc[p] / root;
    }
  });
}

std::tuple<Tensor, Tensor> embed_product_cpu(const Tensor& eu_in, const Tensor& ev_in, const Tensor& gu_in,
                                             const Tensor& bu_in, const Tensor& gv_in, const Tensor& bv_in,
                                             int64_t groups, double eps) {
  const Geo g = check_args("a2u::embed_product", eu_in, ev_in, gu_in, bu_in, gv_in, bv_in, groups);
  const Tensor eu = eu_in.contiguous(), ev = ev_in.contiguous(), gu = gu_in.contiguous(), bu = bu_in.contiguous(),
               gv = gv_in.contiguous(), bv = bv_in.contiguous();
  Tensor z = at::empty({g.b, eu.size(2), eu.size(3)}, eu.options());
  Tensor stats = at::empty({4, g.b, g.g}, eu.options());
  if (g.b == 0) return {z, stats};
  AT_DISPATCH_FLOATING_TYPES(eu.scalar_type(), "a2u_embed_product",
                             [&] { forward_impl<scalar_t>(eu, ev, gu, bu, gv, bv, eps, z, stats, g); });
  return {z, stats};
}

// ------------------------------------------------------------------------------------------- backward
// One channel row: dy_u, dy_v into du, dv; adds (Σ dy_u·e_u, Σ dy_u, Σ dy_v·e_v, Σ dy_v) to sums (float64 totals).
template <typename T>
inline void grad_row(T* du, T* dv, const T* xu, const T* xv, const T* t, T au, T hu, T av, T hv, int64_t len,
                     double* sums) {
  using W = V<T>;
  using vec = typename W::vec;
  constexpr int L = W::L;
  const vec zero{}, slope = vec{} + T(kSlope);
  Total<T> tot[4];
  int64_t p = 0;
  while (p + L <= len) {
    vec a[4] = {};
    const int64_t stop = std::min(len, p + kBlock * L);
    for (; p + L <= stop; p += L) {
      const vec eu = W::load(xu + p), ev = W::load(xv + p), tv = W::load(t + p);
      const vec yu = au * eu + hu, yv = av * ev + hv;
      const vec lu = yu > zero ? yu : yu * slope, lv = yv > zero ? yv : yv * slope;
      const vec gu = tv * lv, gv = tv * lu;
      const vec dyu = yu > zero ? gu : gu * slope, dyv = yv > zero ? gv : gv * slope;
      W::store(du + p, dyu);
      W::store(dv + p, dyv);
      a[0] += dyu * eu;
      a[1] += dyu;
      a[2] += dyv * ev;
      a[3] += dyv;
    }
    for (int q = 0; q < 4; ++q) tot[q].add(a[q]);
  }
  for (int q = 0; q < 4; ++q) sums[q] += tot[q].value();
  for (; p < len; ++p) {
    const T yu = au * xu[p] + hu, yv = av * xv[p] + hv;
    const T gu = t[p] * lrelu(yv), gv = t[p] * lrelu(yu);
    const T dyu = yu > T(0) ? gu : gu * T(kSlope), dyv = yv > T(0) ? gv : gv * T(kSlope);
    du[p] = dyu;
    dv[p] = dyv;
    sums[0] += double(dyu * xu[p]);
    sums[1] += double(dyu);
    sums[2] += double(dyv * xv[p]);
    sums[3] += double(dyv);
  }
}

// dx = c1·dy + c2·x + c3 in place over one channel row (torch's GroupNorm input gradient)
template <typename T>
inline void apply_row(T* d, const T* x, T c1, T c2, T c3, int64_t len) {
  using W = V<T>;
  constexpr int L = W::L;
  int64_t p = 0;
  for (; p + L <= len; p += L) W::store(d + p, c1 * W::load(d + p) + c2 * W::load(x + p) + c3);
  for (; p < len; ++p) d[p] = c1 * d[p] + c2 * x[p] + c3;
}

template <typename T>
void backward_impl(const Tensor& grad, const Tensor& eu, const Tensor& ev, const Tensor& gu, const Tensor& bu,
                   const Tensor& gv, const Tensor& bv, const Tensor& stats, Tensor& dxu, Tensor& dxv,
                   Tensor* dgu, Tensor* dbu, Tensor* dgv, Tensor* dbv, const Geo& g) {
  const T* up = eu.const_data_ptr<T>();
  const T* vp = ev.const_data_ptr<T>();
  const T* gz = grad.const_data_ptr<T>();
  const T* st = stats.const_data_ptr<T>();
  const T *gup = gu.const_data_ptr<T>(), *bup = bu.const_data_ptr<T>();
  const T *gvp = gv.const_data_ptr<T>(), *bvp = bv.const_data_ptr<T>();
  T* dup = dxu.mutable_data_ptr<T>();
  T* dvp = dxv.mutable_data_ptr<T>();
  const int64_t rows = g.b * g.g;
  const T root = T(std::sqrt(double(g.c)));
  const double inv_d = 1.0 / double(g.d);
  std::vector<double> sums(4 * g.b * g.c);   // per (b, c): Σ dy_u·e_u, Σ dy_u, Σ dy_v·e_v, Σ dy_v
  at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> t(g.p);
    int64_t t_sample = -1;
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / g.g, grp = row % g.g;
      if (b != t_sample) {   // dz/√C, the gradient of the channel sum
        for (int64_t p = 0; p < g.p; ++p) t[p] = gz[b * g.p + p] / root;
        t_sample = b;
      }
      const T mu = st[row], ru = st[rows + row], mv = st[2 * rows + row], rv = st[3 * rows + row];
      for (int64_t k = 0; k < g.cg; ++k) {
        const int64_t c = grp * g.cg + k, off = (b * g.c + c) * g.p;
        T au, hu, av, hv;
        affine(mu, ru, gup[c], bup[c], &au, &hu);
        affine(mv, rv, gvp[c], bvp[c], &av, &hv);
        grad_row(dup + off, dvp + off, up + off, vp + off, t.data(), au, hu, av, hv, g.p,
                 sums.data() + 4 * (b * g.c + c));
      }
      for (int side = 0; side < 2; ++side) {   // GroupNorm input gradient of u (side 0) and v (side 1)
        const T* gamma = side ? gvp : gup;
        const T* x = side ? vp : up;
        T* d = side ? dvp : dup;
        const double mean = double(st[2 * side * rows + row]), rstd = double(st[(2 * side + 1) * rows + row]);
        double ds = 0.0, db = 0.0;
        for (int64_t k = 0; k < g.cg; ++k) {
          const int64_t c = grp * g.cg + k;
          const double* s = sums.data() + 4 * (b * g.c + c) + 2 * side;
          ds += s[0] * double(gamma[c]);
          db += s[1] * double(gamma[c]);
        }
        const double c2 = (db * mean - ds) * rstd * rstd * rstd * inv_d;
        const double c3 = -c2 * mean - db * rstd * inv_d;
        for (int64_t k = 0; k < g.cg; ++k) {
          const int64_t c = grp * g.cg + k, off = (b * g.c + c) * g.p;
          apply_row(d + off, x + off, T(rstd * double(gamma[c])), T(c2), T(c3), g.p);
        }
      }
    }
  });
  if (dgu == nullptr) return;
  T* out[4] = {dgu->mutable_data_ptr<T>(), dbu->mutable_data_ptr<T>(), dgv->mutable_data_ptr<T>(),
               dbv->mutable_data_ptr<T>()};
  for (int64_t c = 0; c < g.c; ++c)
    for (int side = 0; side < 2; ++side) {
      double dgamma = 0.0, dbeta = 0.0;
      for (int64_t b = 0; b < g.b; ++b) {
        const int64_t row = b * g.g + c / g.cg;
        const double* s = sums.data() + 4 * (b * g.c + c) + 2 * side;
        dgamma += (s[0] - s[1] * double(st[2 * side * rows + row])) * double(st[(2 * side + 1) * rows + row]);
        dbeta += s[1];
      }
      out[2 * side][c] = T(dgamma);
      out[2 * side + 1][c] = T(dbeta);
    }
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> embed_product_backward_cpu(
    const Tensor& grad_in, const Tensor& eu_in, const Tensor& ev_in, const Tensor& gu_in, const Tensor& bu_in,
    const Tensor& gv_in, const Tensor& bv_in, const Tensor& stats_in, int64_t groups, bool need_e,
    bool need_affine) {
  const Geo g = check_args("a2u::embed_product_backward", eu_in, ev_in, gu_in, bu_in, gv_in, bv_in, groups);
  const Tensor eu = eu_in.contiguous(), ev = ev_in.contiguous(), gu = gu_in.contiguous(), bu = bu_in.contiguous(),
               gv = gv_in.contiguous(), bv = bv_in.contiguous();
  const Tensor grad = grad_in.to(eu.scalar_type()).contiguous();
  const Tensor stats = stats_in.to(eu.scalar_type()).contiguous();
  TORCH_CHECK(grad.sizes() == at::IntArrayRef({g.b, eu.size(2), eu.size(3)}),
              "a2u::embed_product_backward: grad must be B×h×w = ", at::IntArrayRef({g.b, eu.size(2), eu.size(3)}),
              ", got ", grad.sizes());
  TORCH_CHECK(stats.sizes() == at::IntArrayRef({4, g.b, g.g}),
              "a2u::embed_product_backward: stats must be 4×B×G = ", at::IntArrayRef({4, g.b, g.g}), ", got ",
              stats.sizes());
  const auto empty = [&] { return at::empty({0}, eu.options()); };
  if (!need_e && !need_affine) return {empty(), empty(), empty(), empty(), empty(), empty()};
  // the input gradients are also the scratch of dy, so they are allocated even when only γ, β need grads
  Tensor dxu = at::empty_like(eu), dxv = at::empty_like(ev);
  Tensor dgu = need_affine ? at::empty_like(gu) : empty(), dbu = need_affine ? at::empty_like(bu) : empty();
  Tensor dgv = need_affine ? at::empty_like(gv) : empty(), dbv = need_affine ? at::empty_like(bv) : empty();
  if (g.b == 0 || g.p == 0) {
    dxu.zero_(); dxv.zero_();
    if (need_affine) { dgu.zero_(); dbu.zero_(); dgv.zero_(); dbv.zero_(); }
  } else {
    AT_DISPATCH_FLOATING_TYPES(eu.scalar_type(), "a2u_embed_product_backward", [&] {
      backward_impl<scalar_t>(grad, eu, ev, gu, bu, gv, bv, stats, dxu, dxv, need_affine ? &dgu : nullptr,
                              need_affine ? &dbu : nullptr, need_affine ? &dgv : nullptr,
                              need_affine ? &dbv : nullptr, g);
    });
  }
  if (!need_e) return {empty(), empty(), dgu, dbu, dgv, dbv};
  return {dxu, dxv, dgu, dbu, dgv, dbv};
}

}  // namespace
}  // namespace a2u_embedding

TORCH_LIBRARY_FRAGMENT(a2u, m) {
  m.def("embed_product(Tensor e_u, Tensor e_v, Tensor gamma_u, Tensor beta_u, Tensor gamma_v, Tensor beta_v, "
        "int groups, float eps) -> (Tensor, Tensor)");
  m.def("embed_product_backward(Tensor grad, Tensor e_u, Tensor e_v, Tensor gamma_u, Tensor beta_u, "
        "Tensor gamma_v, Tensor beta_v, Tensor stats, int groups, bool need_e, bool need_affine) -> "
        "(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(a2u, CPU, m) {
  m.impl("embed_product", &a2u_embedding::embed_product_cpu);
  m.impl("embed_product_backward", &a2u_embedding::embed_product_backward_cpu);
}
