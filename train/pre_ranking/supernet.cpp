#include "train/pre_ranking/supernet.hpp"

#include <algorithm>
#include <cmath>


namespace funnel::train {

namespace {

std::vector<double> softmax(const float* logits, size_t n) {
  const float largest = *std::max_element(logits, logits + n);
  std::vector<double> p(n);
  double sum = 0.0;
  for (size_t j = 0; j < n; ++j) sum += p[j] = std::exp(static_cast<double>(logits[j] - largest));
  for (double& v : p) v /= sum;
  return p;
}

}  // namespace

Supernet::Supernet(size_t input_dim, uint32_t mixops, Operators operators, Rng& rng)
    : input_dim_(input_dim),
      width_(std::max<size_t>(input_dim, *std::max_element(operators.begin(), operators.end()))),
      mixops_(mixops),
      operators_(std::move(operators)),
      alpha_("autofas/alpha", {mixops, operators_.size()}) {
  // alpha starts at zero: every operator equally likely, as in DARTS.
  dense_.resize(mixops_);
  for (uint32_t l = 0; l < mixops_; ++l)
    for (size_t j = 0; j < operators_.size(); ++j) {
      const uint32_t w = std::max<uint32_t>(operators_[j], 1);  // the identity's entry is never used
      const std::string name = "autofas/mixop" + std::to_string(l) + "/op" + std::to_string(j);
      owned_.push_back(std::make_unique<Parameter>(name + "/weight", std::vector<uint64_t>{w, width_}));
      Parameter* weight = owned_.back().get();
      owned_.push_back(std::make_unique<Parameter>(name + "/bias", std::vector<uint64_t>{w}));
      dense_[l].emplace_back(weight, owned_.back().get());
      if (operators_[j] != 0) dense_[l].back().init(rng);
    }
  out_weight_ = std::make_unique<Parameter>("autofas/out/weight", std::vector<uint64_t>{1, width_});
  out_bias_ = std::make_unique<Parameter>("autofas/out/bias", std::vector<uint64_t>{1});
  out_ = std::make_unique<Linear>(out_weight_.get(), out_bias_.get());
  out_->init(rng);
}

std::vector<Parameter*> Supernet::weights() {
  std::vector<Parameter*> out;
  for (uint32_t l = 0; l < mixops_; ++l)
    for (size_t j = 0; j < operators_.size(); ++j)
      if (operators_[j] != 0) {
        out.push_back(owned_[2 * (l * operators_.size() + j)].get());
        out.push_back(owned_[2 * (l * operators_.size() + j) + 1].get());
      }
  out.push_back(out_weight_.get());
  out.push_back(out_bias_.get());
  return out;
}

std::vector<std::vector<double>> Supernet::probabilities() const {
  std::vector<std::vector<double>> p;
  for (uint32_t l = 0; l < mixops_; ++l) p.push_back(softmax(alpha_.value.data() + l * operators_.size(), operators_.size()));
  return p;
}

void Supernet::forward(const float* x, size_t batch, float* logits) {
  batch_ = batch;
  const size_t width = width_;
  h_.assign(mixops_ + 1, std::vector<float>(batch * width, 0.0f));
  for (size_t b = 0; b < batch; ++b) std::copy(x + b * input_dim_, x + (b + 1) * input_dim_, h_[0].data() + b * width);
  const std::vector<std::vector<double>> p = probabilities();
  y_.assign(mixops_, std::vector<std::vector<float>>(operators_.size()));
  for (uint32_t l = 0; l < mixops_; ++l) {
    std::vector<float>& next = h_[l + 1];
    for (size_t j = 0; j < operators_.size(); ++j) {
      const float weight = static_cast<float>(p[l][j]);
      if (operators_[j] == 0) {
        for (size_t i = 0; i < next.size(); ++i) next[i] += weight * h_[l][i];
        continue;
      }
      const size_t w = operators_[j];
      std::vector<float>& y = y_[l][j];
      y.resize(batch * w);
      dense_[l][j].forward(h_[l].data(), batch, y.data());
      relu_forward(y.data(), y.size(), y.data());
      for (size_t b = 0; b < batch; ++b)
        for (size_t k = 0; k < w; ++k) next[b * width + k] += weight * y[b * w + k];
    }
  }
  out_->forward(h_[mixops_].data(), batch, logits);
}

void Supernet::backward(std::span<const float> dlogits) {
  const size_t batch = batch_, width = width_;
  grad_.resize(batch * width);
  out_->backward(h_[mixops_].data(), dlogits.data(), batch, grad_.data());
  const std::vector<std::vector<double>> p = probabilities();
  std::vector<double> dp(operators_.size());
  std::vector<float> dx(batch * width);
  for (uint32_t l = mixops_; l-- > 0;) {
    grad_next_.assign(batch * width, 0.0f);
    for (size_t j = 0; j < operators_.size(); ++j) {
      const float weight = static_cast<float>(p[l][j]);
      double inner = 0.0;
      if (operators_[j] == 0) {
        for (size_t i = 0; i < grad_.size(); ++i) {
          inner += static_cast<double>(grad_[i]) * h_[l][i];
          grad_next_[i] += weight * grad_[i];
        }
        dp[j] = inner;
        continue;
      }
      const size_t w = operators_[j];
      const std::vector<float>& y = y_[l][j];
      grad_op_.resize(batch * w);
      for (size_t b = 0; b < batch; ++b)
        for (size_t k = 0; k < w; ++k) {
          const float g = grad_[b * width + k];
          inner += static_cast<double>(g) * y[b * w + k];
          grad_op_[b * w + k] = y[b * w + k] > 0.0f ? weight * g : 0.0f;
        }
      dp[j] = inner;
      // The first Mixop's input is the student's (constant) input: no input gradient needed there.
      dense_[l][j].backward(h_[l].data(), grad_op_.data(), batch, l > 0 ? dx.data() : nullptr);
      if (l > 0)
        for (size_t i = 0; i < dx.size(); ++i) grad_next_[i] += dx[i];
    }
    // Through the softmax: d alpha_k = p_k (dp_k - sum_j p_j dp_j).
    double mean = 0.0;
    for (size_t j = 0; j < operators_.size(); ++j) mean += p[l][j] * dp[j];
    for (size_t k = 0; k < operators_.size(); ++k)
      alpha_.grad[l * operators_.size() + k] += static_cast<float>(p[l][k] * (dp[k] - mean));
    grad_.swap(grad_next_);
  }
}

void Supernet::add_probability_gradient(const std::vector<std::vector<double>>& dp) {
  const std::vector<std::vector<double>> p = probabilities();
  for (uint32_t l = 0; l < mixops_; ++l) {
    double mean = 0.0;
    for (size_t j = 0; j < operators_.size(); ++j) mean += p[l][j] * dp[l][j];
    for (size_t k = 0; k < operators_.size(); ++k)
      alpha_.grad[l * operators_.size() + k] += static_cast<float>(p[l][k] * (dp[l][k] - mean));
  }
}

}  // namespace funnel::train
