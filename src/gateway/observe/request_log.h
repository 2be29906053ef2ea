// The request log's write path: requests hand their summaries to a bounded queue and never
// wait; one writer thread drains it into the store in batched transactions. When the queue
// is full a record's row is dropped and counted, so a slow disk or database never slows a
// request; what it cost is kept: its cost, tokens and bytes are summed with those of the
// other dropped records of the same caller key, provider, model, status and minute into one
// row, which the writer writes with its next batch. A budget seeded from the log, and the
// usage report's cost and tokens, then miss only what no bound could keep (more than twice
// max_sums sums at once, or a batch the store refused twice). The report counts a summed row
// as one request, with its records' mean latency.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "gateway/observe/record.h"
#include "gateway/observe/store.h"
#include "gateway/observe/usage.h"

namespace iris::gateway::observe {

struct RequestLogOptions {
  size_t queue_capacity = 10000;  // records waiting to be written; beyond it Submit drops
  size_t max_batch = 500;         // records per transaction
  int flush_interval_ms = 200;    // a partial batch waits at most this long
  // Stored prompts and answers (store_bodies routes) waiting in the queue or being written, in
  // bytes; beyond it a record is queued without its bodies, and the loss counted.
  size_t max_queued_body_bytes = size_t{256} << 20;
  // Sums of dropped records waiting for the writer. Past it a record is summed without its
  // provider and model (by caller key, status and minute alone); past twice it, it is lost.
  size_t max_sums = 1024;
  StoreOptions store;
  // Test hook: runs on the writer thread before each batch is written (e.g. to hold the
  // writer so that the queue fills up).
  std::function<void()> before_batch;
};

struct RequestLogStats {
  int64_t queued = 0;        // waiting in the queue now
  int64_t written = 0;       // records committed to the store
  int64_t dropped = 0;       // refused by Submit (queue full, or the log closed)
  int64_t summed = 0;        // of those, written summed into a row (queue full)
  int64_t write_errors = 0;  // failed batch writes (a batch that fails twice counts twice)
  int64_t lost = 0;          // records given up: a batch failed its retry, or an id already stored
  int64_t batches = 0;       // committed transactions
  // store_bodies records written without their bodies: too large for the queue's byte bound
  // or for limits.max_stored_body_bytes
  int64_t bodies_dropped = 0;
};

class RequestLog {
 public:
  // Opens `store` (see ParseStoreSpec: "" is the default SQLite file, a path or sqlite:PATH,
  // postgres://...), applies the migrations and starts the writer thread.
  static Result<std::unique_ptr<RequestLog>> Open(const std::string& store,
                                                  RequestLogOptions options = {});
  // Starts a log that writes to `writer` (which it owns). `reopen` names the same store for
  // the query connection ("" when queries are not needed).
  static std::unique_ptr<RequestLog> Start(std::unique_ptr<Store> writer, std::string reopen,
                                           RequestLogOptions options = {});

  ~RequestLog();  // Close()
  RequestLog(const RequestLog&) = delete;
  RequestLog& operator=(const RequestLog&) = delete;

  // Queues one record. Never blocks on I/O (takes one short lock); returns false and counts
  // a drop when the queue is full or the log is closed. Thread-safe.
  bool Submit(RequestSummary summary);

  // Returns when every record accepted before the call has been written (or given up).
  // Thread-safe; for tests and shutdown.
  void Flush();

  // Writes what is still queued, stops the writer and closes the store. Idempotent; later
  // Submits are dropped. Call from one thread (the owner's).
  void Close();

  RequestLogStats stats() const;  // thread-safe

  // Queries through a second connection of the same store, opened on first use and shared
  // under a mutex (so one query runs at a time). Block on the store: call them off the
  // gateway's I/O threads. Thread-safe.
  Result<UsageReport> Usage(const UsageQuery& query);
  Result<RequestsPage> Requests(const RequestsQuery& query);

  const std::string& store_location() const { return reopen_; }

 private:
  RequestLog(std::unique_ptr<Store> writer, std::string reopen, RequestLogOptions options);
  void WriterLoop();
  // Writes `batch`, whose last `summed_rows` rows are sums; false when the store refused it.
  bool WriteBatch(const std::vector<RequestSummary>& batch, size_t summed_rows);
  // Adds a record the queue had no room for to its sum (mu_ held); false when it is lost.
  bool AddToSums(const RequestSummary& summary);
  // The sums so far as rows, emptied (mu_ held); `records`: how many records they stand for.
  std::vector<RequestSummary> TakeSums(int64_t& records);
  Result<Store*> Reader();

  const RequestLogOptions options_;
  const std::string reopen_;
  std::unique_ptr<Store> writer_store_;  // used by the writer thread only

  mutable std::mutex mu_;
  std::condition_variable wake_writer_;
  std::condition_variable progress_;
  std::deque<RequestSummary> queue_;  // guarded by mu_
  bool closing_ = false;              // guarded by mu_
  int flush_waiters_ = 0;             // guarded by mu_
  size_t queued_body_bytes_ = 0;      // guarded by mu_
  int64_t accepted_ = 0;              // guarded by mu_: records ever queued
  int64_t done_ = 0;                  // guarded by mu_: records written or given up
  // Dropped records summed, by caller key, provider, model, status and minute; guarded by mu_.
  struct SumKey {
    std::string caller_key, provider, model;
    int http_status = 0;
    int64_t minute = 0;
    auto operator<=>(const SumKey&) const = default;
  };
  struct Sum {
    RequestSummary row;  // the first record's fields; usage, cost and bytes summed
    int64_t count = 0;
    double latency_sum = 0, overhead_sum = 0, ttft_sum = 0;
    int64_t ttft_count = 0;
  };
  std::map<SumKey, Sum> sums_;
  const uint64_t sum_id_prefix_;   // random: the rows' ids differ between instances
  uint64_t sum_rows_ = 0;          // guarded by mu_: summed rows ever made
  int64_t sum_batches_taken_ = 0;  // guarded by mu_: batches that took sums
  int64_t sum_batches_done_ = 0;   // guarded by mu_: of those, written or given up

  std::atomic<int64_t> written_{0};
  std::atomic<int64_t> dropped_{0};
  std::atomic<int64_t> summed_{0};
  std::atomic<int64_t> write_errors_{0};
  std::atomic<int64_t> lost_{0};
  std::atomic<int64_t> batches_{0};
  std::atomic<int64_t> bodies_dropped_{0};
  int64_t last_error_log_ms_ = 0;  // writer thread only

  std::thread writer_;
  bool closed_ = false;  // owner thread only

  std::mutex reader_mu_;
  std::unique_ptr<Store> reader_store_;  // guarded by reader_mu_
};

}  // namespace iris::gateway::observe
