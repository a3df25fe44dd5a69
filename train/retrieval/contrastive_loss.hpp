// The self-supervised task's contrastive loss (Yao et al., CIKM 2021, eq. 3) and the square-loss form of
// spread-out regularisation (Zhang et al., 2017), over rows that are already L2-normalised: the towers end
// with L2 normalisation, so a dot product of their outputs is the cosine similarity s(z_i, z'_j).
#pragma once

#include <cstddef>

namespace funnel::train {

// Eq. 3: L = -1/N sum_i log( exp(s(z_i, z'_i) / tau) / sum_j exp(s(z_i, z'_j) / tau) ), the softmax over
// the batch's second views (row i's positive is row i). z and z2 are [n, dim], unit rows. Returns L;
// when dz / dz2 are not null, writes dL/dz and dL/dz2 ([n, dim], overwritten). z and z2 may be the same
// buffer (identity augmentation: the softmax form of spread-out), with dz and dz2 then distinct buffers
// whose sum is the gradient.
double contrastive_loss(const float* z, const float* z2, size_t n, size_t dim, float temperature, float* dz, float* dz2);

// Spread-out, square-loss form: L = 1/(n(n-1)) sum_{i != j} s(z_i, z_j)^2, which pushes the rows towards
// orthogonality. z is [n, dim], unit rows; writes dL/dz when dz is not null. n < 2 gives 0.
double spread_out_square_loss(const float* z, size_t n, size_t dim, float* dz);

}  // namespace funnel::train
