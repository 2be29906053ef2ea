// The bounded queue and the writer thread behind the request log.
#include "gateway/observe/request_log.h"

#include <chrono>
#include <cstdio>
#include <random>
#include <utility>
#include <vector>

#include "base/time.h"

namespace iris::gateway::observe {

Result<std::unique_ptr<RequestLog>> RequestLog::Open(const std::string& store,
                                                     RequestLogOptions options) {
  StoreSpec spec = ParseStoreSpec(store);
  std::string location =
      spec.kind == StoreSpec::Kind::kPostgres ? spec.location : "sqlite:" + spec.location;
  IRIS_ASSIGN_OR_RETURN(std::unique_ptr<Store> writer, OpenStore(location, options.store));
  return Start(std::move(writer), std::move(location), std::move(options));
}

std::unique_ptr<RequestLog> RequestLog::Start(std::unique_ptr<Store> writer, std::string reopen,
                                              RequestLogOptions options) {
  return std::unique_ptr<RequestLog>(
      new RequestLog(std::move(writer), std::move(reopen), std::move(options)));
}

namespace {

uint64_t RandomSumIdPrefix() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

}  // namespace

RequestLog::RequestLog(std::unique_ptr<Store> writer, std::string reopen, RequestLogOptions options)
    : options_(std::move(options)),
      reopen_(std::move(reopen)),
      writer_store_(std::move(writer)),
      sum_id_prefix_(RandomSumIdPrefix()) {
  writer_ = std::thread([this] { WriterLoop(); });
}

RequestLog::~RequestLog() { Close(); }

bool RequestLog::Submit(RequestSummary summary) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closing_ || queue_.size() >= options_.queue_capacity) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      if (!closing_) AddToSums(summary);
      return false;
    }
    if (summary.bodies_not_kept) bodies_dropped_.fetch_add(1, std::memory_order_relaxed);
    const size_t body_bytes = summary.request_body.size() + summary.response_body.size();
    if (body_bytes > 0) {
      if (queued_body_bytes_ + body_bytes > options_.max_queued_body_bytes) {
        summary.request_body.clear();
        summary.response_body.clear();
        bodies_dropped_.fetch_add(1, std::memory_order_relaxed);
      } else {
        queued_body_bytes_ += body_bytes;
      }
    }
    queue_.push_back(std::move(summary));
    ++accepted_;
    // Wake the writer only when a full batch is ready; otherwise its timer picks it up, so
    // most Submits cost no system call.
    wake = queue_.size() == options_.max_batch;
  }
  if (wake) wake_writer_.notify_one();
  return true;
}

void RequestLog::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  const int64_t target = accepted_;
  // The sums of records dropped so far too: those taken, and those the next batch takes.
  const int64_t sums_target = sum_batches_taken_ + (sums_.empty() ? 0 : 1);
  if (done_ >= target && sum_batches_done_ >= sums_target) return;
  ++flush_waiters_;
  wake_writer_.notify_one();
  progress_.wait(lock, [&] { return done_ >= target && sum_batches_done_ >= sums_target; });
  --flush_waiters_;
}

void RequestLog::Close() {
  if (closed_) return;
  closed_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
  }
  wake_writer_.notify_one();
  if (writer_.joinable()) writer_.join();
  writer_store_.reset();
  std::lock_guard<std::mutex> lock(reader_mu_);
  reader_store_.reset();
}

RequestLogStats RequestLog::stats() const {
  RequestLogStats s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s.queued = static_cast<int64_t>(queue_.size());
  }
  s.written = written_.load(std::memory_order_relaxed);
  s.dropped = dropped_.load(std::memory_order_relaxed);
  s.summed = summed_.load(std::memory_order_relaxed);
  s.write_errors = write_errors_.load(std::memory_order_relaxed);
  s.lost = lost_.load(std::memory_order_relaxed);
  s.batches = batches_.load(std::memory_order_relaxed);
  s.bodies_dropped = bodies_dropped_.load(std::memory_order_relaxed);
  return s;
}

void RequestLog::WriterLoop() {
  std::vector<RequestSummary> batch, sum_rows;
  int64_t sum_records = 0;  // the records sum_rows stand for
  batch.reserve(options_.max_batch);
  const auto interval = std::chrono::milliseconds(options_.flush_interval_ms);
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      // A partial batch waits for the timer; a full one, a Flush or Close goes at once.
      wake_writer_.wait_for(lock, interval, [&] {
        return closing_ || queue_.size() >= options_.max_batch ||
               (flush_waiters_ > 0 && (!queue_.empty() || !sums_.empty()));
      });
      if (queue_.empty() && sums_.empty()) {
        if (closing_) return;
        continue;
      }
      const size_t n = std::min(queue_.size(), options_.max_batch);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      // The sums of records dropped meanwhile go with the batch (not counted in accepted_ or
      // done_: Flush waits for them by sum_batches_*).
      sum_rows = TakeSums(sum_records);
      if (!sum_rows.empty()) ++sum_batches_taken_;
    }
    if (options_.before_batch) options_.before_batch();
    const size_t accepted_rows = batch.size();
    const size_t summed_rows = sum_rows.size();
    for (RequestSummary& r : sum_rows) batch.push_back(std::move(r));
    sum_rows.clear();
    if (WriteBatch(batch, summed_rows)) summed_.fetch_add(sum_records, std::memory_order_relaxed);
    batch.resize(accepted_rows);
    size_t body_bytes = 0;  // (counted until written: queued and in-flight bodies are bounded)
    for (const RequestSummary& r : batch)
      body_bytes += r.request_body.size() + r.response_body.size();
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ += static_cast<int64_t>(batch.size());
      sum_batches_done_ = sum_batches_taken_;
      queued_body_bytes_ -= body_bytes;
    }
    progress_.notify_all();
    batch.clear();
  }
}

bool RequestLog::WriteBatch(const std::vector<RequestSummary>& batch, size_t summed_rows) {
  // One retry: a transient failure (a busy lock, a dropped connection that the store
  // resets) should not lose a batch; a persistent one must not stall the queue.
  Status st;
  // Counted as records: the accepted ones (a summed row's records were counted as dropped).
  const auto records = static_cast<int64_t>(batch.size() - summed_rows);
  for (int attempt = 0; attempt < 2; ++attempt) {
    Result<int64_t> inserted = writer_store_->Insert(batch);
    if (inserted.ok()) {
      const auto total = static_cast<int64_t>(batch.size());
      // On a first try, an id already stored is a record lost, not a retry's echo: counted
      // and said, never silent. (Summed rows' ids are new to every store.)
      const int64_t duplicates = attempt == 0 ? total - *inserted : 0;
      written_.fetch_add(records - duplicates, std::memory_order_relaxed);
      batches_.fetch_add(1, std::memory_order_relaxed);
      if (duplicates > 0) {
        lost_.fetch_add(duplicates, std::memory_order_relaxed);
        std::fprintf(stderr,
                     "iris: request log: %lld records not written: their request id was "
                     "already stored\n",
                     static_cast<long long>(duplicates));
      }
      return true;
    }
    st = inserted.status();
    write_errors_.fetch_add(1, std::memory_order_relaxed);
  }
  lost_.fetch_add(records, std::memory_order_relaxed);
  const int64_t now = SteadyNowMs();
  if (last_error_log_ms_ == 0 || now - last_error_log_ms_ >= 60000) {
    last_error_log_ms_ = now;
    std::fprintf(stderr, "iris: request log: %lld records not written%s: %s\n",
                 static_cast<long long>(records),
                 summed_rows > 0 ? ", nor the sums of records dropped before them" : "",
                 st.ToString().c_str());
  }
  return false;
}

bool RequestLog::AddToSums(const RequestSummary& r) {
  SumKey key{r.caller_key, r.provider, r.model, r.http_status, r.start_unix_ms / 60000};
  auto it = sums_.find(key);
  if (it == sums_.end() && sums_.size() >= options_.max_sums) {
    key.provider.clear();
    key.model.clear();
    it = sums_.find(key);
    if (it == sums_.end() && sums_.size() >= 2 * options_.max_sums) return false;
  }
  if (it == sums_.end()) {
    it = sums_.emplace(key, Sum{}).first;
    RequestSummary& row = it->second.row;
    row.dialect = r.dialect;
    row.start_unix_ms = r.start_unix_ms;
    row.caller_key = r.caller_key;
    row.provider = key.provider;
    row.model = key.model;
    if (!key.model.empty()) row.requested_model = r.requested_model;
    row.http_status = r.http_status;
    row.error_class = r.error_class;
    row.stream = r.stream;
  }
  Sum& sum = it->second;
  ++sum.count;
  sum.row.usage += r.usage;
  if (r.cost_usd) sum.row.cost_usd = sum.row.cost_usd.value_or(0.0) + *r.cost_usd;
  sum.row.bytes_in += r.bytes_in;
  sum.row.bytes_out += r.bytes_out;
  sum.latency_sum += r.latency_ms;
  sum.overhead_sum += r.overhead_ms;
  if (r.ttft_ms >= 0) {
    sum.ttft_sum += r.ttft_ms;
    ++sum.ttft_count;
  }
  return true;
}

std::vector<RequestSummary> RequestLog::TakeSums(int64_t& records) {
  std::vector<RequestSummary> rows;
  records = 0;
  rows.reserve(sums_.size());
  for (auto& [key, sum] : sums_) {
    RequestSummary row = std::move(sum.row);
    char id[64];
    std::snprintf(id, sizeof(id), "req_sum_%016llx_%llu",
                  static_cast<unsigned long long>(sum_id_prefix_),
                  static_cast<unsigned long long>(++sum_rows_));
    row.request_id = id;
    records += sum.count;
    const auto n = static_cast<double>(sum.count);
    row.latency_ms = sum.latency_sum / n;
    row.overhead_ms = sum.overhead_sum / n;
    row.ttft_ms = sum.ttft_count > 0 ? sum.ttft_sum / static_cast<double>(sum.ttft_count) : -1;
    row.error = std::to_string(sum.count) +
                " requests summed in one row (the request log was behind): their cost, tokens "
                "and bytes in total, their latency on average";
    rows.push_back(std::move(row));
  }
  sums_.clear();
  return rows;
}

Result<Store*> RequestLog::Reader() {
  if (reader_store_ == nullptr) {
    if (reopen_.empty()) return FailedPrecondition("this request log cannot be queried");
    IRIS_ASSIGN_OR_RETURN(reader_store_, OpenStore(reopen_, options_.store));
  }
  return reader_store_.get();
}

Result<UsageReport> RequestLog::Usage(const UsageQuery& query) {
  std::lock_guard<std::mutex> lock(reader_mu_);
  IRIS_ASSIGN_OR_RETURN(Store * store, Reader());
  return QueryUsage(*store, query);
}

Result<RequestsPage> RequestLog::Requests(const RequestsQuery& query) {
  std::lock_guard<std::mutex> lock(reader_mu_);
  IRIS_ASSIGN_OR_RETURN(Store * store, Reader());
  return QueryRequests(*store, query);
}

}  // namespace iris::gateway::observe
