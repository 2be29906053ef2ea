// The request log's write path: requests hand their summaries to a bounded queue and never
// wait; one writer thread drains it into the store in batched transactions. When the queue
// is full a record is dropped and counted, so a slow disk or database never slows a request.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

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
  StoreOptions store;
  // Test hook: runs on the writer thread before each batch is written (e.g. to hold the
  // writer so that the queue fills up).
  std::function<void()> before_batch;
};

struct RequestLogStats {
  int64_t queued = 0;        // waiting in the queue now
  int64_t written = 0;       // records committed to the store
  int64_t dropped = 0;       // refused by Submit (queue full, or the log closed)
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
  void WriteBatch(const std::vector<RequestSummary>& batch);
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

  std::atomic<int64_t> written_{0};
  std::atomic<int64_t> dropped_{0};
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
