// Fused CPU depthwise correlation of the A2U kernel generator, forward and backward (float32, float64).
// Semantics: models/ops/kernels/depthwise.py (`_correlations_eager` stays the reference and the fallback):
//   out[q, n, c, i, j] = Σ_{dy,dx<k} f[n, q(·C + c), dy, dx] · x_pad[n, c, s·i + dy, s·j + dx],
// x zero-padded by B = ⌊(k−1)/2⌋ before and B (stride 2) or ⌊k/2⌋ (stride 1) after; filters N×q×k×k (shared by
// the channels) or N×(q·C)×k×k (channel-wise, set-major). The output is sets-major, q×N×C×h×w, so each set's
// N×C×h×w view is contiguous (as the separate outputs of the grouped convolutions were).
//
// Layout and work split:
// - one task = one (image n, channel c) plane, all q filter sets; the plane is staged once per task in a
//   zero-padded, column-de-interleaved buffer (phase p = column parity for stride 2), so every filter tap is a
//   contiguous, unclipped run along the output width; blocks of output rows × 8 or 16 columns × two sets keep
//   their accumulators in vector registers over all k² taps (x is read once from memory, the output written once);
// - backward, per plane: grad_x in gather form (each grad_x element written once, Σ over q, taps and rows in a
//   fixed order) and the plane's k×k filter-gradient partials as lane-blocked dot products; shared filters reduce
//   the per-plane partials over c afterwards in channel order. No atomics: results do not depend on the thread
//   count;
// - accumulation in the input dtype (float for float32, double for float64).
#include <torch/library.h>
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <vector>

namespace a2u_correlation {
namespace {

using at::Tensor;

// ------------------------------------------------------------------------------------------- vectors
// 256-bit vectors as GCC/Clang vector extensions (AVX2 with -march=x86-64-v3; pairs of 128-bit ops otherwise),
// so the accumulators of a block provably live in registers. Unaligned loads through element-aligned,
// may-alias twins of the vector types.
typedef float vfloat __attribute__((vector_size(32)));
typedef double vdouble __attribute__((vector_size(32)));
typedef float vfloat_u __attribute__((vector_size(32), aligned(4), may_alias));
typedef double vdouble_u __attribute__((vector_size(32), aligned(8), may_alias));
template <typename T> struct VecOf;
template <> struct VecOf<float> { using type = vfloat; using unaligned = vfloat_u; };
template <> struct VecOf<double> { using type = vdouble; using unaligned = vdouble_u; };
template <typename T> using Vec = typename VecOf<T>::type;
template <typename T> constexpr int kLanes = int(32 / sizeof(T));

template <typename T>
inline Vec<T> vload(const T* p) {
  return *reinterpret_cast<const typename VecOf<T>::unaligned*>(p);
}

// dst[0 … count) = lanes[0 … count): whole vectors as fixed-size copies (no library call), then element-wise.
template <typename T>
inline void copy_lanes(T* dst, const T* lanes, int64_t count) {
  constexpr int L = kLanes<T>;
  int64_t l = 0;
  for (; l + L <= count; l += L) std::memcpy(dst + l, lanes + l, sizeof(T) * L);
  for (; l < count; ++l) dst[l] = lanes[l];
}

// Block of R output rows × NV vectors for NQ weight sets: acc[r][q] = Σ_t w[q·wstride + t] · src[t][base + r·rstride
// + jc + (0 … NV·L−1)], taps in order t = 0 … nt−1; then store(r, lanes, V) per row, lanes = NQ sets × V = NV·L
// values. Sources are read NV·L lanes past jc (lanes past the valid width are discarded by `store`).
template <int R, int NQ, int NV, typename T, typename Store>
inline void tap_block(const T* w, int64_t wstride, const T* const* src, int nt, int64_t base, int64_t rstride,
                      int64_t jc, Store&& store) {
  constexpr int L = kLanes<T>;
  Vec<T> acc[R][NQ][NV];
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < NQ; ++q)
      for (int v = 0; v < NV; ++v) acc[r][q][v] = Vec<T>{};
  for (int t = 0; t < nt; ++t) {
    T wv[NQ];
    for (int q = 0; q < NQ; ++q) wv[q] = w[q * wstride + t];
    const T* sp = src[t] + base + jc;
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < NV; ++v) {
        const Vec<T> x = vload(sp + r * rstride + v * L);
        for (int q = 0; q < NQ; ++q) acc[r][q][v] += wv[q] * x;
      }
  }
  alignas(32) T lanes[NQ * NV * L];
  for (int r = 0; r < R; ++r) {
    for (int q = 0; q < NQ; ++q)
      for (int v = 0; v < NV; ++v) *reinterpret_cast<Vec<T>*>(lanes + (q * NV + v) * L) = acc[r][q][v];
    store(r, static_cast<const T*>(lanes), NV * L);
  }
}

// All output rows [0, rows) and columns [0, len) of one tap list: blocks of R rows (then single rows), chunks of
// NV·L columns. Each output element is one accumulator with the taps summed in list order.
template <int R, int NQ, int NV, typename T, typename Store>
inline void tap_rows(const T* w, int64_t wstride, const T* const* src, int nt, int64_t rows, int64_t rstride,
                     int64_t len, Store&& store) {
  constexpr int V = NV * kLanes<T>;
  int64_t i = 0;
  for (; i + R <= rows; i += R)
    for (int64_t jc = 0; jc < len; jc += V)
      tap_block<R, NQ, NV, T>(w, wstride, src, nt, i * rstride, rstride, jc,
                              [&](int r, const T* lanes, int v) { store(i + r, jc, lanes, v); });
  for (; i < rows; ++i)
    for (int64_t jc = 0; jc < len; jc += V)
      tap_block<1, NQ, NV, T>(w, wstride, src, nt, i * rstride, rstride, jc,
                              [&](int r, const T* lanes, int v) { store(i + r, jc, lanes, v); });
}

// Row blocking for NQ sets at output width len: 8 independent accumulators (FMA latency × throughput).
template <int NQ, typename T, typename Store>
inline void tap_rows_auto(const T* w, int64_t wstride, const T* const* src, int nt, int64_t rows, int64_t rstride,
                          int64_t len, Store&& store) {
  if (len > kLanes<T>) tap_rows<4 / NQ, NQ, 2, T>(w, wstride, src, nt, rows, rstride, len, store);
  else tap_rows<8 / NQ, NQ, 1, T>(w, wstride, src, nt, rows, rstride, len, store);
}

// out[q·ostride + t] += Σ_{i<rows, j<wr} g[q][i·gstride + j] · s[t][i·sstride + j] for NQ sets and NT taps
// (wr a multiple of L, g zero past the valid width): accumulators in registers over all rows, per L-lane chunk;
// lanes summed in a fixed order.
template <int NT, int NQ, typename T>
inline void tap_dots(T* out, int64_t ostride, const T* const* g, int64_t gstride, const T* const* s,
                     int64_t sstride, int64_t rows, int64_t wr) {
  constexpr int L = kLanes<T>;
  for (int64_t jc = 0; jc < wr; jc += L) {
    Vec<T> acc[NQ][NT];
    for (int q = 0; q < NQ; ++q)
      for (int t = 0; t < NT; ++t) acc[q][t] = Vec<T>{};
    for (int64_t i = 0; i < rows; ++i) {
      Vec<T> gv[NQ];
      for (int q = 0; q < NQ; ++q) gv[q] = vload(g[q] + i * gstride + jc);
      for (int t = 0; t < NT; ++t) {
        const Vec<T> x = vload(s[t] + i * sstride + jc);
        for (int q = 0; q < NQ; ++q) acc[q][t] += gv[q] * x;
      }
    }
    alignas(32) T lanes[L];
    for (int q = 0; q < NQ; ++q)
      for (int t = 0; t < NT; ++t) {
        *reinterpret_cast<Vec<T>*>(lanes) = acc[q][t];
        T sum = lanes[0];
        for (int l = 1; l < L; ++l) sum += lanes[l];
        out[q * ostride + t] += sum;
      }
  }
}

template <int NQ, typename T>
inline void tap_dots_any(T* out, int64_t ostride, const T* const* g, int64_t gstride, const T* const* s, int nt,
                         int64_t sstride, int64_t rows, int64_t wr) {
  int t = 0;
  while (t < nt) {
    const int left = nt - t;
    if (left >= 6) { tap_dots<6, NQ, T>(out + t, ostride, g, gstride, s + t, sstride, rows, wr); t += 6; }
    else if (left == 5) { tap_dots<5, NQ, T>(out + t, ostride, g, gstride, s + t, sstride, rows, wr); t += 5; }
    else if (left == 4) { tap_dots<4, NQ, T>(out + t, ostride, g, gstride, s + t, sstride, rows, wr); t += 4; }
    else if (left == 3) { tap_dots<3, NQ, T>(out + t, ostride, g, gstride, s + t, sstride, rows, wr); t += 3; }
    else if (left == 2) { tap_dots<2, NQ, T>(out + t, ostride, g, gstride, s + t, sstride, rows, wr); t += 2; }
    else { tap_dots<1, NQ, T>(out + t, ostride, g, gstride, s + t, sstride, rows, wr); t += 1; }
  }
}

// ------------------------------------------------------------------------------------------- geometry
// Staged plane: row r ↔ x row r − B; phase p, column t ↔ x column s·t + p − B (zero outside the map). Tap
// (dy, dx) of output (i, j) reads staged row s·i + dy, phase dx % s, column j + dx / s.
// Staged grad (backward): g[q, i, j] at row mmax + i, column mmax + j, zero around.
struct Geo {
  int64_t n, c, H, W, k, k2, q, s, before, h, w, mmax, lanes, wr, pw, rows, xrow, xsize, tc0, tc1, gw, grows,
      gsize;
  bool shared;
  Geo(const Tensor& x, const Tensor& f, int64_t k_, int64_t q_, int64_t s_) {
    n = x.size(0); c = x.size(1); H = x.size(2); W = x.size(3);
    k = k_; k2 = k * k; q = q_; s = s_;
    before = (k - 1) / 2;
    const int64_t after = s == 2 ? before : k / 2;
    h = (H + before + after - k) / s + 1;
    w = (W + before + after - k) / s + 1;
    shared = f.size(1) == q;
    mmax = (k - 1) / s;                                // largest column shift dx / s
    lanes = 32 / int64_t(x.element_size());
    wr = (w + lanes - 1) / lanes * lanes;             // output width rounded up to whole vectors
    pw = wr + mmax;                                    // staged phase-row width
    rows = s * (h - 1) + k;                            // staged rows
    xrow = s * pw;                                     // staged row stride (all phases)
    xsize = rows * xrow + 2 * lanes;                   // + slack: blocks read up to 2 vectors past a row's end
    tc0 = t_lo(s - 1);                                 // staged columns covering x columns [0, W), all phases
    tc1 = t_hi(0);
    gw = mmax + std::max(wr, tc1);
    grows = mmax + std::max(h, (H - 1 + before) / s + 1);
    gsize = grows * gw + 2 * lanes;
  }
  // phase-p staged columns holding x columns in [0, W): t ∈ [t_lo, t_hi)
  int64_t t_lo(int64_t p) const { return (before - p + s - 1) / s; }
  int64_t t_hi(int64_t p) const { return W - 1 + before - p < 0 ? 0 : (W - 1 + before - p) / s + 1; }
};

void check_args(const char* op, const Tensor& x, const Tensor& f, int64_t k, int64_t q, int64_t s) {
  TORCH_CHECK(x.dim() == 4 && f.dim() == 4, op, ": x and filters must be 4-D");
  TORCH_CHECK(x.device().is_cpu() && f.device().is_cpu(), op, ": CPU tensors only");
  TORCH_CHECK(x.scalar_type() == f.scalar_type(), op, ": x and filters must have the same dtype, got ",
              x.scalar_type(), " and ", f.scalar_type());
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, op,
              ": float32 or float64 only, got ", x.scalar_type());
  TORCH_CHECK(k >= 1 && q >= 1, op, ": kernel_size and sets must be positive, got ", k, " and ", q);
  TORCH_CHECK(s == 1 || s == 2, op, ": stride must be 1 or 2, got ", s);
  TORCH_CHECK(f.size(0) == x.size(0) && (f.size(1) == q || f.size(1) == q * x.size(1)) && f.size(2) == k &&
                  f.size(3) == k,
              op, ": filters must be N×q×k×k or N×(q·C)×k×k, got ", f.sizes(), " for x ", x.sizes());
  const int64_t b = (k - 1) / 2, a = s == 2 ? b : k / 2;
  TORCH_CHECK(x.size(2) + b + a >= k && x.size(3) + b + a >= k, op, ": x ", x.sizes(),
              " is smaller than the window ", k);
}

// Copy plane xc (H×W) into the staged buffer. Only the columns some window reads (t < w + mmax) are written, so
// that the lanes past the output width (multiplied by zero grads in tap_dots) never see an x value no output
// uses; the zero border stays from the buffer's allocation (every plane has the same geometry).
template <typename T>
inline void stage_x(T* buf, const T* xc, const Geo& g) {
  const int64_t cols = g.w + g.mmax;
  const int64_t r_lo = g.before, r_hi = std::min(g.rows, g.H + g.before);
  for (int64_t r = r_lo; r < r_hi; ++r) {
    const T* src = xc + (r - g.before) * g.W;
    T* row = buf + r * g.xrow;
    if (g.s == 1) {
      std::copy(src, src + g.W, row + g.before);
    } else {   // x column 2u (2u + 1) goes to phase pe (1 − pe), column u + oe (u + oo); columns ≥ pw are unused
      const int64_t pe = g.before % 2, oe = (g.before - pe) / 2, oo = (g.before + pe) / 2;
      T* even = row + pe * g.pw + oe;
      T* odd = row + (1 - pe) * g.pw + oo;
      const int64_t pairs = std::max<int64_t>(0, std::min({g.W / 2, cols - oe, cols - oo}));
#pragma GCC ivdep
      for (int64_t u = 0; u < pairs; ++u) {
        even[u] = src[2 * u];
        odd[u] = src[2 * u + 1];
      }
      for (int64_t col = 2 * pairs; col < g.W; ++col) {
        const int64_t u = col / 2;
        if (col % 2 == 0 && u + oe < cols) even[u] = src[col];
        if (col % 2 == 1 && u + oo < cols) odd[u] = src[col];
      }
    }
  }
}

// Filters of plane (n, c) as a q×k² table.
template <typename T>
inline void load_filters(T* wq, const T* fp, const Geo& g, int64_t n, int64_t c) {
  for (int64_t q = 0; q < g.q; ++q) {
    const T* src = fp + (g.shared ? (n * g.q + q) : (n * g.q + q) * g.c + c) * g.k2;
    std::copy(src, src + g.k2, wq + q * g.k2);
  }
}

// ------------------------------------------------------------------------------------------- forward
template <typename T>
void forward_impl(const Tensor& x, const Tensor& f, Tensor& out, const Geo& g) {
  const T* xp = x.const_data_ptr<T>();
  const T* fp = f.const_data_ptr<T>();
  T* op = out.mutable_data_ptr<T>();
  const int64_t plane = g.h * g.w, set_stride = g.n * g.c * plane;
  at::parallel_for(0, g.n * g.c, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> xs(g.xsize, T(0));
    std::vector<T> wq(g.q * g.k2);
    std::vector<const T*> src(g.k2);
    for (int64_t dy = 0; dy < g.k; ++dy)
      for (int64_t dx = 0; dx < g.k; ++dx)
        src[dy * g.k + dx] = xs.data() + dy * g.xrow + (dx % g.s) * g.pw + dx / g.s;
    for (int64_t task = begin; task < end; ++task) {
      stage_x(xs.data(), xp + task * g.H * g.W, g);
      load_filters(wq.data(), fp, g, task / g.c, task % g.c);
      for (int64_t q0 = 0; q0 < g.q; q0 += 2) {
        T* obase = op + q0 * set_stride + task * plane;
        const int nq = int(std::min<int64_t>(2, g.q - q0));
        auto store = [&](int64_t i, int64_t jc, const T* lanes, int v) {
          for (int q = 0; q < nq; ++q)
            copy_lanes(obase + q * set_stride + i * g.w + jc, lanes + q * v, std::min<int64_t>(v, g.w - jc));
        };
        if (q0 + 2 <= g.q)
          tap_rows_auto<2, T>(wq.data() + q0 * g.k2, g.k2, src.data(), int(g.k2), g.h, g.s * g.xrow, g.w, store);
        else
          tap_rows_auto<1, T>(wq.data() + q0 * g.k2, g.k2, src.data(), int(g.k2), g.h, g.s * g.xrow, g.w, store);
      }
    }
  });
}

Tensor correlate_cpu(const Tensor& x_in, const Tensor& f_in, int64_t k, int64_t q, int64_t s) {
  check_args("a2u::correlate", x_in, f_in, k, q, s);
  const Tensor x = x_in.contiguous(), f = f_in.contiguous();
  const Geo g(x, f, k, q, s);
  Tensor out = at::empty({g.q, g.n, g.c, g.h, g.w}, x.options());
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "a2u_correlate", [&] { forward_impl<scalar_t>(x, f, out, g); });
  return out;
}

// ------------------------------------------------------------------------------------------- backward
// grad_x in gather form, per row class ρ (x rows y with y + B ≡ ρ mod s, y = s·a + ρ − B) and all s column phases
// at once: grad_x[y, s·t + p − B] = Σ_q Σ_{m_y: dy = ρ + s·m_y < k} Σ_{m_x: dx = p + s·m_x < k}
//   f[q, dy, dx] · g[q, a − m_y, t − m_x]  — a stride-1 correlation of the zero-padded grad with one weight set
// per phase p (the taps' sources do not depend on p).
// grad_f[q(, c), dy, dx] = Σ_{(c,) i, j} g[q, c, i, j] · x_pad[c, s·i + dy, s·j + dx]  (per-plane dot products).
template <typename T>
void backward_impl(const Tensor& grad, const Tensor& x, const Tensor& f, Tensor* gx, Tensor* gf, const Geo& g) {
  const T* gp = grad.const_data_ptr<T>();
  const T* xp = x.const_data_ptr<T>();
  const T* fp = f.const_data_ptr<T>();
  T* gxp = gx ? gx->mutable_data_ptr<T>() : nullptr;
  T* gfp = gf ? gf->mutable_data_ptr<T>() : nullptr;
  const int64_t plane = g.h * g.w, set_stride = g.n * g.c * plane;
  // shared filters: per-plane partials (N·C × q × k²), summed over c below in channel order
  std::vector<T> partial(gfp && g.shared ? g.n * g.c * g.q * g.k2 : 0);
  at::parallel_for(0, g.n * g.c, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> xs(gfp ? g.xsize : 0, T(0));
    std::vector<T> gs(g.q * g.gsize, T(0));
    std::vector<T> wq(g.q * g.k2), dots(g.q * g.k2);
    const int64_t taps_cap = g.q * ((g.k + g.s - 1) / g.s) * (g.mmax + 1);
    std::vector<T> tw(g.s * taps_cap);
    std::vector<const T*> ts(taps_cap), src(g.k), gq(g.q);
    for (int64_t q = 0; q < g.q; ++q) gq[q] = gs.data() + q * g.gsize + g.mmax * g.gw + g.mmax;   // g[q, 0, 0]
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / g.c, c = task % g.c;
      for (int64_t q = 0; q < g.q; ++q) {
        const T* gplane = gp + q * set_stride + task * plane;
        T* staged = gs.data() + q * g.gsize + g.mmax * g.gw + g.mmax;
        for (int64_t i = 0; i < g.h; ++i) std::copy(gplane + i * g.w, gplane + (i + 1) * g.w, staged + i * g.gw);
      }
      if (gxp) {
        load_filters(wq.data(), fp, g, n, c);
        T* gxc = gxp + task * g.H * g.W;
        for (int64_t rho = 0; rho < g.s; ++rho) {
          const int64_t a_lo = (g.before - rho + g.s - 1) / g.s;
          if (g.H - 1 + g.before - rho < 0) continue;
          const int64_t a_hi = (g.H - 1 + g.before - rho) / g.s;     // inclusive
          if (a_hi < a_lo) continue;
          int nt = 0;
          for (int64_t q = 0; q < g.q; ++q)
            for (int64_t my = 0; rho + g.s * my < g.k; ++my)
              for (int64_t mx = 0; mx <= g.mmax; ++mx) {
                const int64_t dy = rho + g.s * my;
                for (int64_t p = 0; p < g.s; ++p) {
                  const int64_t dx = p + g.s * mx;
                  tw[p * taps_cap + nt] = dx < g.k ? wq[q * g.k2 + dy * g.k + dx] : T(0);
                }
                ts[nt] = gq[q] + (a_lo - my) * g.gw + g.tc0 - mx;
                ++nt;
              }
          const int64_t len = g.tc1 - g.tc0;
          if (g.s == 1) {   // t0 = B ↔ x column 0: contiguous rows of grad_x
            tap_rows_auto<1, T>(tw.data(), taps_cap, ts.data(), nt, a_hi - a_lo + 1, g.gw, len,
                                [&](int64_t ii, int64_t jc, const T* lanes, int v) {
                                  copy_lanes(gxc + (a_lo + ii - g.before) * g.W + jc, lanes,
                                             std::min<int64_t>(v, len - jc));
                                });
          } else {          // phases interleave into the row: x column 2t + p − B
            tap_rows_auto<2, T>(tw.data(), taps_cap, ts.data(), nt, a_hi - a_lo + 1, g.gw, len,
                                [&](int64_t ii, int64_t jc, const T* lanes, int v) {
                                  T mixed[4 * kLanes<T>];           // x columns c0, c0 + 1, … (phases 0, 1)
                                  for (int l = 0; l < v; ++l) {
                                    mixed[2 * l] = lanes[l];
                                    mixed[2 * l + 1] = lanes[v + l];
                                  }
                                  const int64_t c0 = 2 * (g.tc0 + jc) - g.before;
                                  const int64_t lo = std::max<int64_t>(0, c0);
                                  const int64_t hi = std::min<int64_t>(g.W, c0 + 2 * std::min<int64_t>(v, len - jc));
                                  T* xrow = gxc + (2 * (a_lo + ii) + rho - g.before) * g.W;
                                  if (hi > lo) copy_lanes(xrow + lo, mixed + (lo - c0), hi - lo);
                                });
          }
        }
      }
      if (gfp) {
        stage_x(xs.data(), xp + task * g.H * g.W, g);
        std::fill(dots.begin(), dots.end(), T(0));
        for (int64_t dy = 0; dy < g.k; ++dy) {
          const T* row = xs.data() + dy * g.xrow;
          for (int64_t dx = 0; dx < g.k; ++dx) src[dx] = row + (dx % g.s) * g.pw + dx / g.s;
          int64_t q = 0;
          for (; q + 2 <= g.q; q += 2)
            tap_dots_any<2, T>(dots.data() + q * g.k2 + dy * g.k, g.k2, gq.data() + q, g.gw, src.data(), int(g.k),
                               g.s * g.xrow, g.h, g.wr);
          if (q < g.q)
            tap_dots_any<1, T>(dots.data() + q * g.k2 + dy * g.k, g.k2, gq.data() + q, g.gw, src.data(), int(g.k),
                               g.s * g.xrow, g.h, g.wr);
        }
        if (g.shared) std::copy(dots.begin(), dots.end(), partial.data() + task * g.q * g.k2);
        else
          for (int64_t q = 0; q < g.q; ++q)
            std::copy(dots.data() + q * g.k2, dots.data() + (q + 1) * g.k2, gfp + ((n * g.q + q) * g.c + c) * g.k2);
      }
    }
  });
  if (gfp && g.shared) {
    const int64_t per_image = g.q * g.k2;
    at::parallel_for(0, g.n, 1, [&](int64_t begin, int64_t end) {
      for (int64_t n = begin; n < end; ++n) {
        T* dst = gfp + n * per_image;
        const T* part = partial.data() + n * g.c * per_image;
        std::copy(part, part + per_image, dst);
        for (int64_t c = 1; c < g.c; ++c)
          for (int64_t e = 0; e < per_image; ++e) dst[e] += part[c * per_image + e];
      }
    });
  }
}

std::tuple<Tensor, Tensor> correlate_backward_cpu(const Tensor& grad_in, const Tensor& x_in, const Tensor& f_in,
                                                  int64_t k, int64_t q, int64_t s, bool need_x, bool need_filters) {
  check_args("a2u::correlate_backward", x_in, f_in, k, q, s);
  const Tensor x = x_in.contiguous(), f = f_in.contiguous();
  const Tensor grad = grad_in.to(x.scalar_type()).contiguous();
  const Geo g(x, f, k, q, s);
  TORCH_CHECK(grad.sizes() == at::IntArrayRef({g.q, g.n, g.c, g.h, g.w}),
              "a2u::correlate_backward: grad must be q×N×C×h×w = ", at::IntArrayRef({g.q, g.n, g.c, g.h, g.w}),
              ", got ", grad.sizes());
  Tensor gx = need_x ? at::empty_like(x) : at::empty({0}, x.options());
  Tensor gf = need_filters ? at::empty_like(f) : at::empty({0}, x.options());
  if ((!need_x && !need_filters) || x.numel() == 0) {
    if (need_x) gx.zero_();
    if (need_filters) gf.zero_();
    return {gx, gf};
  }
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "a2u_correlate_backward", [&] {
    backward_impl<scalar_t>(grad, x, f, need_x ? &gx : nullptr, need_filters ? &gf : nullptr, g);
  });
  return {gx, gf};
}

}  // namespace
}  // namespace a2u_correlation

TORCH_LIBRARY_FRAGMENT(a2u, m) {
  m.def("correlate(Tensor x, Tensor filters, int kernel_size, int sets, int stride) -> Tensor");
  m.def("correlate_backward(Tensor grad, Tensor x, Tensor filters, int kernel_size, int sets, int stride, "
        "bool need_x, bool need_filters) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(a2u, CPU, m) {
  m.impl("correlate", &a2u_correlation::correlate_cpu);
  m.impl("correlate_backward", &a2u_correlation::correlate_backward_cpu);
}
