// Fused CPU reassembly ops of A2U (upsampling, CARAFE-naive semantics) and A2D (even-window stride-2
// downsampling), forward and backward. Semantics: models/ops/kernels/up.py and down.py (the pure-PyTorch paths
// stay the reference and the export path).
//
// Layout and work split (design: shared/design/fused_kernels.md §6.3):
// - NCHW, one task = (image n, kernel group g, band of rows); the task loops over the group's channels, so each
//   per-pixel kernel weight of the band is loaded into cache once and reused by all channels;
// - per channel the source rows of the band (plus halo) are staged once in a small zero-padded buffer
//   (up: columns repeated r times; down: even/odd columns de-interleaved), so every window tap is a contiguous,
//   unclipped, vectorisable run along the width;
// - backward computes grad_x and grad_K in one pass in gather form: a task writes only its own rows of both,
//   so there are no atomics and the result does not depend on the number of threads or the band size;
// - accumulation in at::opmath_type (float for float/bfloat16/half, double for double).
// Out-of-map taps read zeros (zero padding), as in the reference paths.
#include <torch/library.h>
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdlib>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <vector>

namespace a2u_reassembly {
namespace {

using at::Tensor;

// ------------------------------------------------------------------------------------------- row helpers
// acc[j] (+)= Σ_t w[t][j] · s[t][j], j < len, for NT taps (compile-time NT: one pass over acc per call).
template <int NT, typename T>
inline void taps_dot(T* __restrict acc, const T* const* w, const T* const* s, int64_t len, bool init) {
  const T* wp[NT];
  const T* sp[NT];
  for (int t = 0; t < NT; ++t) { wp[t] = w[t]; sp[t] = s[t]; }
  if (init) {
#pragma GCC ivdep
    for (int64_t j = 0; j < len; ++j) {
      T v = wp[0][j] * sp[0][j];
      for (int t = 1; t < NT; ++t) v += wp[t][j] * sp[t][j];
      acc[j] = v;
    }
  } else {
#pragma GCC ivdep
    for (int64_t j = 0; j < len; ++j) {
      T v = acc[j];
      for (int t = 0; t < NT; ++t) v += wp[t][j] * sp[t][j];
      acc[j] = v;
    }
  }
}

template <typename T>
inline void taps_dot_any(T* acc, const T* const* w, const T* const* s, int nt, int64_t len, bool init) {
  int t = 0;
  while (t < nt) {
    const int left = nt - t;
    const bool first = init && t == 0;
    if (left >= 6) { taps_dot<6>(acc, w + t, s + t, len, first); t += 6; }
    else if (left == 5) { taps_dot<5>(acc, w + t, s + t, len, first); t += 5; }
    else if (left == 4) { taps_dot<4>(acc, w + t, s + t, len, first); t += 4; }
    else if (left == 3) { taps_dot<3>(acc, w + t, s + t, len, first); t += 3; }
    else if (left == 2) { taps_dot<2>(acc, w + t, s + t, len, first); t += 2; }
    else { taps_dot<1>(acc, w + t, s + t, len, first); t += 1; }
  }
}

// out[t][j] += g[j] · s[t][j] for NT taps (kernel-gradient accumulation, one read of g).
template <int NT, typename T>
inline void taps_outer(T* const* out, const T* __restrict g, const T* const* s, int64_t len) {
  T* op[NT];
  const T* sp[NT];
  for (int t = 0; t < NT; ++t) { op[t] = out[t]; sp[t] = s[t]; }
#pragma GCC ivdep
  for (int64_t j = 0; j < len; ++j) {
    const T gj = g[j];
    for (int t = 0; t < NT; ++t) op[t][j] += gj * sp[t][j];
  }
}

template <typename T>
inline void taps_outer_any(T* const* out, const T* g, const T* const* s, int nt, int64_t len) {
  int t = 0;
  while (t < nt) {
    const int left = nt - t;
    if (left >= 6) { taps_outer<6>(out + t, g, s + t, len); t += 6; }
    else if (left == 5) { taps_outer<5>(out + t, g, s + t, len); t += 5; }
    else if (left == 4) { taps_outer<4>(out + t, g, s + t, len); t += 4; }
    else if (left == 3) { taps_outer<3>(out + t, g, s + t, len); t += 3; }
    else if (left == 2) { taps_outer<2>(out + t, g, s + t, len); t += 2; }
    else { taps_outer<1>(out + t, g, s + t, len); t += 1; }
  }
}

// acc[j] += a[j] · b[j]
template <typename T>
inline void fma_row(T* __restrict acc, const T* __restrict a, const T* __restrict b, int64_t len) {
  for (int64_t j = 0; j < len; ++j) acc[j] += a[j] * b[j];
}

// Rows of a tensor in the accumulation type: a pointer into the tensor when the types agree, else a converted
// copy in a scratch buffer.
template <typename scalar_t, typename acc_t>
inline const acc_t* as_acc(const scalar_t* src, acc_t* scratch, int64_t len) {
  if constexpr (std::is_same_v<scalar_t, acc_t>) {
    (void)scratch; (void)len;
    return src;
  } else {
    for (int64_t j = 0; j < len; ++j) scratch[j] = static_cast<acc_t>(src[j]);
    return scratch;
  }
}

template <typename scalar_t, typename acc_t>
inline void store_row(scalar_t* dst, const acc_t* src, int64_t len) {
  for (int64_t j = 0; j < len; ++j) dst[j] = static_cast<scalar_t>(src[j]);
}

// Rows per band: enough tasks for the threads, and the band's per-task accumulators (`row_bytes` per row)
// within ~64 KiB (measured best on the 2-core Xeon, 1 thread, of 32–256 KiB; env A2U_BAND_KB overrides).
inline int64_t band_budget() {
  static const int64_t kb = [] {
    const char* env = std::getenv("A2U_BAND_KB");
    return env ? std::max<int64_t>(1, std::atoll(env)) : int64_t(64);
  }();
  return kb << 10;
}

inline int64_t band_rows(int64_t rows, int64_t images, int64_t row_bytes) {
  int64_t band = std::max<int64_t>(1, band_budget() / std::max<int64_t>(1, row_bytes));
  band = std::min<int64_t>(band, 16);
  const int64_t want_tasks = 4 * at::get_num_threads();
  while (band > 1 && images * ((rows + band - 1) / band) < want_tasks) band = (band + 1) / 2;
  return std::min(band, std::max<int64_t>(rows, 1));
}

void check_common(const char* op, const Tensor& x, const Tensor& kernels) {
  TORCH_CHECK(x.dim() == 4 && kernels.dim() == 4, op, ": x and kernels must be 4-D");
  TORCH_CHECK(x.device().is_cpu() && kernels.device().is_cpu(), op, ": CPU tensors only");
  TORCH_CHECK(x.scalar_type() == kernels.scalar_type(), op, ": x and kernels must have the same dtype, got ",
              x.scalar_type(), " and ", kernels.scalar_type());
}

// =========================================================================================== upsampling
// out[n, c, I, J] = Σ_{a,b} K[n, g·s² + (a+R)s + (b+R), I, J] · x[n, c, ⌊I/r⌋ + a, ⌊J/r⌋ + b]
struct UpGeo {
  int64_t n, c, h, w, groups, cg, s, s2, radius, r, H, W, padw, xrw;
  UpGeo(const Tensor& x, int64_t s_, int64_t groups_, int64_t r_) {
    n = x.size(0); c = x.size(1); h = x.size(2); w = x.size(3);
    groups = groups_; cg = c / groups; s = s_; s2 = s * s; radius = (s - 1) / 2; r = r_;
    H = r * h; W = r * w; padw = r * radius; xrw = W + 2 * padw;
  }
};

void check_up(const char* op, const Tensor& x, const Tensor& kernels, int64_t s, int64_t groups, int64_t r) {
  check_common(op, x, kernels);
  TORCH_CHECK(s >= 1 && s % 2 == 1, op, ": kernel_size must be a positive odd int, got ", s);
  TORCH_CHECK(r >= 1, op, ": scale_factor must be positive, got ", r);
  TORCH_CHECK(groups >= 1 && x.size(1) % groups == 0, op, ": group_size must divide the channels");
  TORCH_CHECK(kernels.size(0) == x.size(0) && kernels.size(1) == groups * s * s &&
                  kernels.size(2) == r * x.size(2) && kernels.size(3) == r * x.size(3),
              op, ": kernels must have shape (N, G·s², r·h, r·w), got ", kernels.sizes());
}

// Stage low-res rows [lo, hi) of channel plane `xc` (h×w) as column-repeated, zero-padded rows of width xrw.
// Buffer row t holds low-res row lo + t; rows outside [0, h) stay zero (set once per task).
template <typename scalar_t, typename acc_t>
inline void stage_up_rows(acc_t* buf, const scalar_t* xc, const UpGeo& g, int64_t lo, int64_t hi) {
  for (int64_t i = std::max<int64_t>(lo, 0); i < std::min(hi, g.h); ++i) {
    acc_t* row = buf + (i - lo) * g.xrw + g.padw;
    const scalar_t* src = xc + i * g.w;
    if (g.r == 2) {
      for (int64_t j = 0; j < g.w; ++j) {
        const acc_t v = static_cast<acc_t>(src[j]);
        row[2 * j] = v; row[2 * j + 1] = v;
      }
    } else {
      for (int64_t j = 0; j < g.w; ++j) {
        const acc_t v = static_cast<acc_t>(src[j]);
        for (int64_t q = 0; q < g.r; ++q) row[g.r * j + q] = v;
      }
    }
  }
}

template <typename scalar_t>
void up_forward_impl(const Tensor& x, const Tensor& kernels, Tensor& out, const UpGeo& g) {
  using acc_t = at::opmath_type<scalar_t>;
  const scalar_t* xp = x.const_data_ptr<scalar_t>();
  const scalar_t* kp = kernels.const_data_ptr<scalar_t>();
  scalar_t* op = out.mutable_data_ptr<scalar_t>();
  const int64_t band = band_rows(g.h, g.n * g.groups, g.r * g.s2 * g.W * int64_t(sizeof(acc_t)));
  const int64_t nbands = (g.h + band - 1) / band;
  at::parallel_for(0, g.n * g.groups * nbands, 1, [&](int64_t begin, int64_t end) {
    const int64_t halo_rows = band + 2 * g.radius;
    std::vector<acc_t> xr(halo_rows * g.xrw);
    std::vector<acc_t> kconv(std::is_same_v<scalar_t, acc_t> ? 0 : band * g.r * g.s2 * g.W);
    std::vector<acc_t> acc(std::is_same_v<scalar_t, acc_t> ? 0 : g.W);
    std::vector<const acc_t*> kw(band * g.r * g.s2), src(g.s);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t bi = task % nbands, ng = task / nbands, grp = ng % g.groups, n = ng / g.groups;
      const int64_t i0 = bi * band, i1 = std::min(g.h, i0 + band);
      // kernel rows of the band (loaded / converted once, reused by every channel)
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t p = 0; p < g.r; ++p)
          for (int64_t e = 0; e < g.s2; ++e) {
            const int64_t slot = ((i - i0) * g.r + p) * g.s2 + e;
            const scalar_t* krow = kp + (((n * g.groups + grp) * g.s2 + e) * g.H + (g.r * i + p)) * g.W;
            kw[slot] = as_acc<scalar_t, acc_t>(krow, kconv.data() + slot * g.W, g.W);
          }
      std::fill(xr.begin(), xr.end(), acc_t(0));
      for (int64_t cc = 0; cc < g.cg; ++cc) {
        const int64_t c = grp * g.cg + cc;
        stage_up_rows<scalar_t, acc_t>(xr.data(), xp + (n * g.c + c) * g.h * g.w, g, i0 - g.radius,
                                       i1 + g.radius);
        for (int64_t i = i0; i < i1; ++i)
          for (int64_t p = 0; p < g.r; ++p) {
            scalar_t* orow = op + ((n * g.c + c) * g.H + g.r * i + p) * g.W;
            acc_t* a_row;
            if constexpr (std::is_same_v<scalar_t, acc_t>) a_row = orow; else a_row = acc.data();
            const acc_t* const* kwp = kw.data() + ((i - i0) * g.r + p) * g.s2;
            for (int64_t a = 0; a < g.s; ++a) {   // window row a − R: staged row (i − i0) + a
              const acc_t* base = xr.data() + (i - i0 + a) * g.xrw;
              for (int64_t b = 0; b < g.s; ++b) src[b] = base + g.r * b;   // column shift r·(b − R) + padw
              taps_dot_any<acc_t>(a_row, kwp + a * g.s, src.data(), int(g.s), g.W, a == 0);
            }
            if constexpr (!std::is_same_v<scalar_t, acc_t>) store_row(orow, a_row, g.W);
          }
      }
    }
  });
}

Tensor reassemble_up_cpu(const Tensor& x_in, const Tensor& k_in, int64_t s, int64_t groups, int64_t r) {
  check_up("a2u::reassemble_up", x_in, k_in, s, groups, r);
  const Tensor x = x_in.contiguous(), kernels = k_in.contiguous();
  const UpGeo g(x, s, groups, r);
  Tensor out = at::empty({g.n, g.c, g.H, g.W}, x.options());
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "a2u_reassemble_up", [&] {
    up_forward_impl<scalar_t>(x, kernels, out, g);
  });
  return out;
}

// Backward. A task owns low-res rows [i0, i1) of grad_x and the high-res rows [r·i0, r·i1) of grad_K.
//   grad_K[e, I, J] = Σ_c g[c, I, J] · x_r[c, ⌊I/r⌋ + a, J + r·b]           (channel loop, per-task accumulators)
//   grad_x_r[c, i, J'] = Σ_{a,b,p} K[e, r(i−a)+p, J'−r·b] · g[c, r(i−a)+p, J'−r·b],  grad_x = Σ over the r columns
template <typename scalar_t>
void up_backward_impl(const Tensor& grad, const Tensor& x, const Tensor& kernels, Tensor* gx, Tensor* gk,
                      const UpGeo& g) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr bool same = std::is_same_v<scalar_t, acc_t>;
  const scalar_t* gp = grad.const_data_ptr<scalar_t>();
  const scalar_t* xp = x.const_data_ptr<scalar_t>();
  const scalar_t* kp = kernels.const_data_ptr<scalar_t>();
  scalar_t* gxp = gx ? gx->mutable_data_ptr<scalar_t>() : nullptr;
  scalar_t* gkp = gk ? gk->mutable_data_ptr<scalar_t>() : nullptr;
  const int64_t band = band_rows(g.h, g.n * g.groups, 2 * g.r * g.s2 * g.W * int64_t(sizeof(acc_t)));
  const int64_t nbands = (g.h + band - 1) / band;
  at::parallel_for(0, g.n * g.groups * nbands, 1, [&](int64_t begin, int64_t end) {
    const int64_t halo_rows = band + 2 * g.radius;
    std::vector<acc_t> xr(gkp ? halo_rows * g.xrw : 0);
    std::vector<acc_t> gk_acc(gkp ? band * g.r * g.s2 * g.W : 0);
    // grad_x: kernel rows of the band's halo (low-res rows i0−R … i1+R), converted once when needed
    std::vector<acc_t> kconv(same || !gxp ? 0 : halo_rows * g.r * g.s2 * g.W);
    std::vector<const acc_t*> kh(halo_rows * g.r * g.s2, nullptr);
    std::vector<acc_t> gconv(same ? 0 : halo_rows * g.r * g.W);
    std::vector<const acc_t*> grow(halo_rows * g.r, nullptr);
    std::vector<acc_t> gxr(g.W), prod(g.W);
    std::vector<const acc_t*> src(g.s);
    std::vector<acc_t*> dst(g.s);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t bi = task % nbands, ng = task / nbands, grp = ng % g.groups, n = ng / g.groups;
      const int64_t i0 = bi * band, i1 = std::min(g.h, i0 + band);
      const int64_t lo = std::max<int64_t>(0, i0 - g.radius), hi = std::min(g.h, i1 + g.radius);
      if (gxp)
        for (int64_t i = lo; i < hi; ++i)
          for (int64_t p = 0; p < g.r; ++p)
            for (int64_t e = 0; e < g.s2; ++e) {
              const int64_t slot = ((i - (i0 - g.radius)) * g.r + p) * g.s2 + e;
              const scalar_t* krow = kp + (((n * g.groups + grp) * g.s2 + e) * g.H + (g.r * i + p)) * g.W;
              kh[slot] = as_acc<scalar_t, acc_t>(krow, same ? nullptr : kconv.data() + slot * g.W, g.W);
            }
      if (gkp) {
        std::fill(xr.begin(), xr.end(), acc_t(0));
        std::fill(gk_acc.begin(), gk_acc.end(), acc_t(0));
      }
      for (int64_t cc = 0; cc < g.cg; ++cc) {
        const int64_t c = grp * g.cg + cc;
        const scalar_t* gplane = gp + (n * g.c + c) * g.H * g.W;
        // grad rows of the halo band in the accumulation type
        const int64_t glo = gxp ? lo : i0, ghi = gxp ? hi : i1;
        for (int64_t i = glo; i < ghi; ++i)
          for (int64_t p = 0; p < g.r; ++p) {
            const int64_t slot = (i - (i0 - g.radius)) * g.r + p;
            grow[slot] = as_acc<scalar_t, acc_t>(gplane + (g.r * i + p) * g.W,
                                                 same ? nullptr : gconv.data() + slot * g.W, g.W);
          }
        if (gkp) {
          stage_up_rows<scalar_t, acc_t>(xr.data(), xp + (n * g.c + c) * g.h * g.w, g, i0 - g.radius,
                                         i1 + g.radius);
          for (int64_t i = i0; i < i1; ++i)
            for (int64_t p = 0; p < g.r; ++p) {
              const acc_t* gr = grow[(i - (i0 - g.radius)) * g.r + p];
              acc_t* gkb = gk_acc.data() + ((i - i0) * g.r + p) * g.s2 * g.W;
              for (int64_t a = 0; a < g.s; ++a) {
                const acc_t* base = xr.data() + (i - i0 + a) * g.xrw;
                for (int64_t b = 0; b < g.s; ++b) {
                  src[b] = base + g.r * b;
                  dst[b] = gkb + (a * g.s + b) * g.W;
                }
                taps_outer_any<acc_t>(dst.data(), gr, src.data(), int(g.s), g.W);
              }
            }
        }
        if (gxp) {
          for (int64_t i = i0; i < i1; ++i) {
            std::fill(gxr.begin(), gxr.end(), acc_t(0));
            for (int64_t a = -g.radius; a <= g.radius; ++a) {
              const int64_t is = i - a;
              if (is < 0 || is >= g.h) continue;
              for (int64_t p = 0; p < g.r; ++p) {
                const int64_t hslot = (is - (i0 - g.radius)) * g.r + p;
                const acc_t* gr = grow[hslot];
                for (int64_t b = -g.radius; b <= g.radius; ++b) {
                  const int64_t e = (a + g.radius) * g.s + (b + g.radius);
                  const acc_t* kr = kh[hslot * g.s2 + e];
                  // gxr[J'] += K[J' − r·b] · g[J' − r·b] for 0 ≤ J' − r·b < W
                  const int64_t shift = g.r * b;
                  const int64_t jlo = std::max<int64_t>(0, shift), jhi = std::min(g.W, g.W + shift);
                  if (jlo < jhi) fma_row<acc_t>(gxr.data() + jlo, kr + jlo - shift, gr + jlo - shift, jhi - jlo);
                }
              }
            }
            scalar_t* xrow = gxp + ((n * g.c + c) * g.h + i) * g.w;
            for (int64_t j = 0; j < g.w; ++j) {
              acc_t v = gxr[g.r * j];
              for (int64_t q = 1; q < g.r; ++q) v += gxr[g.r * j + q];
              xrow[j] = static_cast<scalar_t>(v);
            }
          }
        }
      }
      if (gkp)
        for (int64_t i = i0; i < i1; ++i)
          for (int64_t p = 0; p < g.r; ++p)
            for (int64_t e = 0; e < g.s2; ++e)
              store_row(gkp + (((n * g.groups + grp) * g.s2 + e) * g.H + g.r * i + p) * g.W,
                        gk_acc.data() + (((i - i0) * g.r + p) * g.s2 + e) * g.W, g.W);
    }
  });
}

std::tuple<Tensor, Tensor> reassemble_up_backward_cpu(const Tensor& grad_in, const Tensor& x_in,
                                                      const Tensor& k_in, int64_t s, int64_t groups, int64_t r,
                                                      bool need_x, bool need_kernels) {
  check_up("a2u::reassemble_up_backward", x_in, k_in, s, groups, r);
  const Tensor x = x_in.contiguous(), kernels = k_in.contiguous();
  const Tensor grad = grad_in.to(x.scalar_type()).contiguous();
  const UpGeo g(x, s, groups, r);
  TORCH_CHECK(grad.sizes() == at::IntArrayRef({g.n, g.c, g.H, g.W}), "a2u::reassemble_up_backward: grad has shape ",
              grad.sizes());
  Tensor gx = need_x ? at::empty_like(x) : at::empty({0}, x.options());
  Tensor gk = need_kernels ? at::empty_like(kernels) : at::empty({0}, x.options());
  if ((!need_x && !need_kernels) || x.numel() == 0 || kernels.numel() == 0) {
    if (need_x) gx.zero_();
    if (need_kernels) gk.zero_();
    return {gx, gk};
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "a2u_reassemble_up_backward", [&] {
    up_backward_impl<scalar_t>(grad, x, kernels, need_x ? &gx : nullptr, need_kernels ? &gk : nullptr, g);
  });
  return {gx, gk};
}

// =========================================================================================== downsampling
// out[n, c, i, j] = Σ_{dy,dx<k} K[n, g·k² + dy·k + dx, i, j] · x[n, c, 2i − B + dy, 2j − B + dx],  B = (k−2)/2.
// Input column 2j − B + dx = 2(j + m) + q with (m, q) = divmod(dx − B, 2): de-interleaved phase q at j + m.
struct DownGeo {
  int64_t n, c, HH, WW, h, w, groups, cg, k, k2, before, pad_lo, pad_hi, phw;
  DownGeo(const Tensor& x, int64_t k_, int64_t groups_) {
    n = x.size(0); c = x.size(1); HH = x.size(2); WW = x.size(3); h = HH / 2; w = WW / 2;
    groups = groups_; cg = c / groups; k = k_; k2 = k * k; before = (k - 2) / 2;
    pad_lo = (before + 1) / 2;                      // −min m
    pad_hi = std::max<int64_t>(0, (k - 1 - before) / 2);   // max m
    phw = w + pad_lo + pad_hi;
  }
  int64_t col_shift(int64_t dx) const { const int64_t d = dx - before; return d >= 0 ? d / 2 : -((-d + 1) / 2); }
  int64_t col_phase(int64_t dx) const { const int64_t d = dx - before; return ((d % 2) + 2) % 2; }
};

void check_down(const char* op, const Tensor& x, const Tensor& kernels, int64_t k, int64_t groups) {
  check_common(op, x, kernels);
  TORCH_CHECK(k >= 2 && k % 2 == 0, op, ": kernel_size must be a positive even int, got ", k);
  TORCH_CHECK(x.size(2) % 2 == 0 && x.size(3) % 2 == 0, op, ": x must have even height and width");
  TORCH_CHECK(groups >= 1 && x.size(1) % groups == 0, op, ": group_size must divide the channels");
  TORCH_CHECK(kernels.size(0) == x.size(0) && kernels.size(1) == groups * k * k &&
                  kernels.size(2) == x.size(2) / 2 && kernels.size(3) == x.size(3) / 2,
              op, ": kernels must have shape (N, G·k², H/2, W/2), got ", kernels.sizes());
}

// Stage input rows [ylo, yhi) of plane xc (HH×WW) de-interleaved: buffer row t, phase q, column pad_lo + j holds
// x[ylo + t, 2j + q]. Rows outside the map and the pad columns stay zero (set once per task).
template <typename scalar_t, typename acc_t>
inline void stage_down_rows(acc_t* buf, const scalar_t* xc, const DownGeo& g, int64_t ylo, int64_t yhi) {
  for (int64_t y = std::max<int64_t>(ylo, 0); y < std::min(yhi, g.HH); ++y) {
    acc_t* even = buf + ((y - ylo) * 2) * g.phw + g.pad_lo;
    acc_t* odd = even + g.phw;
    const scalar_t* src = xc + y * g.WW;
    for (int64_t j = 0; j < g.w; ++j) {
      even[j] = static_cast<acc_t>(src[2 * j]);
      odd[j] = static_cast<acc_t>(src[2 * j + 1]);
    }
  }
}

template <typename scalar_t>
void down_forward_impl(const Tensor& x, const Tensor& kernels, Tensor& out, const DownGeo& g) {
  using acc_t = at::opmath_type<scalar_t>;
  const scalar_t* xp = x.const_data_ptr<scalar_t>();
  const scalar_t* kp = kernels.const_data_ptr<scalar_t>();
  scalar_t* op = out.mutable_data_ptr<scalar_t>();
  const int64_t band = band_rows(g.h, g.n * g.groups, g.k2 * g.w * int64_t(sizeof(acc_t)));
  const int64_t nbands = (g.h + band - 1) / band;
  at::parallel_for(0, g.n * g.groups * nbands, 1, [&](int64_t begin, int64_t end) {
    const int64_t in_rows = 2 * band + g.k - 2;
    std::vector<acc_t> ph(in_rows * 2 * g.phw);
    std::vector<acc_t> kconv(std::is_same_v<scalar_t, acc_t> ? 0 : band * g.k2 * g.w);
    std::vector<acc_t> acc(std::is_same_v<scalar_t, acc_t> ? 0 : g.w);
    std::vector<const acc_t*> kw(band * g.k2), src(g.k);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t bi = task % nbands, ng = task / nbands, grp = ng % g.groups, n = ng / g.groups;
      const int64_t i0 = bi * band, i1 = std::min(g.h, i0 + band);
      const int64_t ylo = 2 * i0 - g.before;
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t e = 0; e < g.k2; ++e) {
          const int64_t slot = (i - i0) * g.k2 + e;
          const scalar_t* krow = kp + (((n * g.groups + grp) * g.k2 + e) * g.h + i) * g.w;
          kw[slot] = as_acc<scalar_t, acc_t>(krow, kconv.data() + slot * g.w, g.w);
        }
      std::fill(ph.begin(), ph.end(), acc_t(0));
      for (int64_t cc = 0; cc < g.cg; ++cc) {
        const int64_t c = grp * g.cg + cc;
        stage_down_rows<scalar_t, acc_t>(ph.data(), xp + (n * g.c + c) * g.HH * g.WW, g, ylo,
                                         2 * (i1 - 1) - g.before + g.k);
        for (int64_t i = i0; i < i1; ++i) {
          scalar_t* orow = op + ((n * g.c + c) * g.h + i) * g.w;
          acc_t* a_row;
          if constexpr (std::is_same_v<scalar_t, acc_t>) a_row = orow; else a_row = acc.data();
          for (int64_t dy = 0; dy < g.k; ++dy) {
            const int64_t t = 2 * i - g.before + dy - ylo;
            for (int64_t dx = 0; dx < g.k; ++dx)
              src[dx] = ph.data() + (t * 2 + g.col_phase(dx)) * g.phw + g.pad_lo + g.col_shift(dx);
            taps_dot_any<acc_t>(a_row, kw.data() + (i - i0) * g.k2 + dy * g.k, src.data(), int(g.k), g.w,
                                dy == 0);
          }
          if constexpr (!std::is_same_v<scalar_t, acc_t>) store_row(orow, a_row, g.w);
        }
      }
    }
  });
}

Tensor reassemble_down_cpu(const Tensor& x_in, const Tensor& k_in, int64_t k, int64_t groups) {
  check_down("a2u::reassemble_down", x_in, k_in, k, groups);
  const Tensor x = x_in.contiguous(), kernels = k_in.contiguous();
  const DownGeo g(x, k, groups);
  Tensor out = at::empty({g.n, g.c, g.h, g.w}, x.options());
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "a2u_reassemble_down", [&] {
    down_forward_impl<scalar_t>(x, kernels, out, g);
  });
  return out;
}

// Backward. A task owns output rows [i0, i1) of grad_K and input rows [2·i0, 2·i1) of grad_x.
//   grad_K[e, i, j] = Σ_c g[c, i, j] · x[c, 2i − B + dy, 2j − B + dx]
//   grad_x[c, y, 2j' + q] = Σ over (i, dy) with 2i − B + dy = y, and dx with phase q: K[e, i, j'−m] · g[c, i, j'−m]
template <typename scalar_t>
void down_backward_impl(const Tensor& grad, const Tensor& x, const Tensor& kernels, Tensor* gx, Tensor* gk,
                        const DownGeo& g) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr bool same = std::is_same_v<scalar_t, acc_t>;
  const scalar_t* gp = grad.const_data_ptr<scalar_t>();
  const scalar_t* xp = x.const_data_ptr<scalar_t>();
  const scalar_t* kp = kernels.const_data_ptr<scalar_t>();
  scalar_t* gxp = gx ? gx->mutable_data_ptr<scalar_t>() : nullptr;
  scalar_t* gkp = gk ? gk->mutable_data_ptr<scalar_t>() : nullptr;
  const int64_t band = band_rows(g.h, g.n * g.groups, 2 * g.k2 * g.w * int64_t(sizeof(acc_t)));
  const int64_t nbands = (g.h + band - 1) / band;
  // output rows whose window reaches input rows [2·i0, 2·i1): i ∈ [i0 − hb, i1 + ha)
  const int64_t ha = (g.before + 1) / 2 + 1;                 // rows after: 2i − B ≤ y  ⇒  i ≤ (y + B)/2
  const int64_t hb = (g.k - 1 - g.before + 1) / 2;           // rows before: 2i − B + k − 1 ≥ y
  at::parallel_for(0, g.n * g.groups * nbands, 1, [&](int64_t begin, int64_t end) {
    const int64_t in_rows = 2 * band + g.k - 2;
    const int64_t halo = band + ha + hb;
    std::vector<acc_t> ph(gkp ? in_rows * 2 * g.phw : 0);
    std::vector<acc_t> gk_acc(gkp ? band * g.k2 * g.w : 0);
    std::vector<acc_t> kconv(same || !gxp ? 0 : halo * g.k2 * g.w);
    std::vector<const acc_t*> kh(halo * g.k2, nullptr);
    std::vector<acc_t> gconv(same ? 0 : halo * g.w);
    std::vector<const acc_t*> grow(halo, nullptr);
    std::vector<acc_t> gxph(2 * g.phw);
    std::vector<const acc_t*> src(g.k);
    std::vector<acc_t*> dst(g.k);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t bi = task % nbands, ng = task / nbands, grp = ng % g.groups, n = ng / g.groups;
      const int64_t i0 = bi * band, i1 = std::min(g.h, i0 + band);
      const int64_t hbase = i0 - hb;       // halo slot 0 = output row i0 − hb
      const int64_t lo = std::max<int64_t>(0, i0 - hb), hi = std::min(g.h, i1 + ha);
      const int64_t ylo = 2 * i0 - g.before;
      if (gxp)
        for (int64_t i = lo; i < hi; ++i)
          for (int64_t e = 0; e < g.k2; ++e) {
            const int64_t slot = (i - hbase) * g.k2 + e;
            const scalar_t* krow = kp + (((n * g.groups + grp) * g.k2 + e) * g.h + i) * g.w;
            kh[slot] = as_acc<scalar_t, acc_t>(krow, same ? nullptr : kconv.data() + slot * g.w, g.w);
          }
      if (gkp) {
        std::fill(ph.begin(), ph.end(), acc_t(0));
        std::fill(gk_acc.begin(), gk_acc.end(), acc_t(0));
      }
      for (int64_t cc = 0; cc < g.cg; ++cc) {
        const int64_t c = grp * g.cg + cc;
        const scalar_t* gplane = gp + (n * g.c + c) * g.h * g.w;
        const int64_t glo = gxp ? lo : i0, ghi = gxp ? hi : i1;
        for (int64_t i = glo; i < ghi; ++i)
          grow[i - hbase] = as_acc<scalar_t, acc_t>(gplane + i * g.w,
                                                    same ? nullptr : gconv.data() + (i - hbase) * g.w, g.w);
        if (gkp) {
          stage_down_rows<scalar_t, acc_t>(ph.data(), xp + (n * g.c + c) * g.HH * g.WW, g, ylo,
                                           2 * (i1 - 1) - g.before + g.k);
          for (int64_t i = i0; i < i1; ++i) {
            const acc_t* gr = grow[i - hbase];
            acc_t* gkb = gk_acc.data() + (i - i0) * g.k2 * g.w;
            for (int64_t dy = 0; dy < g.k; ++dy) {
              const int64_t t = 2 * i - g.before + dy - ylo;
              for (int64_t dx = 0; dx < g.k; ++dx) {
                src[dx] = ph.data() + (t * 2 + g.col_phase(dx)) * g.phw + g.pad_lo + g.col_shift(dx);
                dst[dx] = gkb + (dy * g.k + dx) * g.w;
              }
              taps_outer_any<acc_t>(dst.data(), gr, src.data(), int(g.k), g.w);
            }
          }
        }
        if (gxp) {
          for (int64_t y = 2 * i0; y < 2 * i1; ++y) {
            std::fill(gxph.begin(), gxph.end(), acc_t(0));
            // output rows i whose window row dy = y − 2i + B lies in [0, k)
            const int64_t num = y + g.before - g.k + 1;
            const int64_t ilo = std::max<int64_t>(0, num >= 0 ? (num + 1) / 2 : -((-num) / 2));
            const int64_t ihi = std::min<int64_t>(g.h - 1, (y + g.before) / 2);
            for (int64_t i = ilo; i <= ihi; ++i) {
              const int64_t dy = y - 2 * i + g.before;
              const acc_t* gr = grow[i - hbase];
              for (int64_t dx = 0; dx < g.k; ++dx) {
                const acc_t* kr = kh[(i - hbase) * g.k2 + dy * g.k + dx];
                acc_t* target = gxph.data() + g.col_phase(dx) * g.phw + g.pad_lo + g.col_shift(dx);
                fma_row<acc_t>(target, kr, gr, g.w);
              }
            }
            scalar_t* xrow = gxp + ((n * g.c + c) * g.HH + y) * g.WW;
            const acc_t* even = gxph.data() + g.pad_lo;
            const acc_t* odd = even + g.phw;
            for (int64_t j = 0; j < g.w; ++j) {
              xrow[2 * j] = static_cast<scalar_t>(even[j]);
              xrow[2 * j + 1] = static_cast<scalar_t>(odd[j]);
            }
          }
        }
      }
      if (gkp)
        for (int64_t i = i0; i < i1; ++i)
          for (int64_t e = 0; e < g.k2; ++e)
            store_row(gkp + (((n * g.groups + grp) * g.k2 + e) * g.h + i) * g.w,
                      gk_acc.data() + ((i - i0) * g.k2 + e) * g.w, g.w);
    }
  });
}

std::tuple<Tensor, Tensor> reassemble_down_backward_cpu(const Tensor& grad_in, const Tensor& x_in,
                                                        const Tensor& k_in, int64_t k, int64_t groups,
                                                        bool need_x, bool need_kernels) {
  check_down("a2u::reassemble_down_backward", x_in, k_in, k, groups);
  const Tensor x = x_in.contiguous(), kernels = k_in.contiguous();
  const Tensor grad = grad_in.to(x.scalar_type()).contiguous();
  const DownGeo g(x, k, groups);
  TORCH_CHECK(grad.sizes() == at::IntArrayRef({g.n, g.c, g.h, g.w}), "a2u::reassemble_down_backward: grad has shape ",
              grad.sizes());
  Tensor gx = need_x ? at::empty_like(x) : at::empty({0}, x.options());
  Tensor gk = need_kernels ? at::empty_like(kernels) : at::empty({0}, x.options());
  if ((!need_x && !need_kernels) || x.numel() == 0 || kernels.numel() == 0) {
    if (need_x) gx.zero_();
    if (need_kernels) gk.zero_();
    return {gx, gk};
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "a2u_reassemble_down_backward", [&] {
    down_backward_impl<scalar_t>(grad, x, kernels, need_x ? &gx : nullptr, need_kernels ? &gk : nullptr, g);
  });
  return {gx, gk};
}

}  // namespace
}  // namespace a2u_reassembly

TORCH_LIBRARY_FRAGMENT(a2u, m) {
  m.def("reassemble_up(Tensor x, Tensor kernels, int kernel_size, int group_size, int scale_factor) -> Tensor");
  m.def("reassemble_up_backward(Tensor grad, Tensor x, Tensor kernels, int kernel_size, int group_size, "
        "int scale_factor, bool need_x, bool need_kernels) -> (Tensor, Tensor)");
  m.def("reassemble_down(Tensor x, Tensor kernels, int kernel_size, int group_size) -> Tensor");
  m.def("reassemble_down_backward(Tensor grad, Tensor x, Tensor kernels, int kernel_size, int group_size, "
        "bool need_x, bool need_kernels) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(a2u, CPU, m) {
  m.impl("reassemble_up", &a2u_reassembly::reassemble_up_cpu);
  m.impl("reassemble_up_backward", &a2u_reassembly::reassemble_up_backward_cpu);
  m.impl("reassemble_down", &a2u_reassembly::reassemble_down_cpu);
  m.impl("reassemble_down_backward", &a2u_reassembly::reassemble_down_backward_cpu);
}
