namespace Matrix.Homeserver.Observability;

/// <summary>
/// Every series the server exposes on a <c>metrics</c> listener. The components that do the work update their series
/// as they go; <see cref="ScrapeTimeMetrics"/> reads the rest (runtime, process, queues) when scraped.
/// </summary>
public sealed class ServerMetrics
{
    /// <summary>The label values of the two kinds of long-poll (made once: they are passed on every wait).</summary>
    public static readonly string[] SyncLongPoll = ["sync"], SlidingSyncLongPoll = ["sliding_sync"];

    public Counter HttpRequests { get; } = new("homeserver_http_requests_total",
        "HTTP requests answered, by method, route template and status.", "method", "route", "status");
    public Histogram HttpRequestDuration { get; } = new("homeserver_http_request_duration_seconds",
        "Time from a request's arrival to its answer, by method and route template (long-polls included).", Histogram.LatencyBuckets, "method", "route");
    public Gauge LongPollsWaiting { get; } = new("homeserver_long_polls_waiting",
        "Long-polling requests waiting for news, by kind (sync, sliding_sync).", "kind");
    public Counter SyncWakeups { get; } = new("homeserver_sync_wakeups_total", "Waiting long-polls woken by news.");
    public Counter EventsPersisted { get; } = new("homeserver_events_persisted_total",
        "Events persisted (accepted), by whether their sender is a local or a remote user.", "origin");
    public Histogram DatabaseTransactionDuration { get; } = new("homeserver_database_transaction_duration_seconds",
        "Database reads and write transactions, from taking a connection to giving it back, by kind (read, write).",
        Histogram.LatencyBuckets, "kind");
    public Gauge DatabaseConnectionsInUse { get; } = new("homeserver_database_connections_in_use",
        "Database connections the server holds for reads and write transactions now.");
    public Gauge FederationQueuePending { get; } = new("homeserver_federation_queue_pending",
        "Events and EDUs queued for each destination server, not yet sent.", "destination");
    public Gauge AppServiceQueuePending { get; } = new("homeserver_appservice_queue_pending",
        "Events and other data queued for each application service, not yet acknowledged.", "appservice");

    public Counter ReplicationMessages { get; } = new("homeserver_replication_messages_total",
        "Messages between this deployment's processes over Redis, by direction (sent, received).", "direction");
    public Counter BackgroundJobRuns { get; } = new("homeserver_background_job_runs_total",
        "Completed passes of the periodic clean-ups this process runs, by job (maintenance, oauth_cleanup).", "job");
    public Gauge ReplicationConnected { get; } = new("homeserver_replication_connected",
        "1 while this process is connected to the deployment's Redis, 0 while not (absent in a single-process deployment).");

    public Counter GcCollections { get; } = new("dotnet_gc_collections_total", "Garbage collections, by generation.", "generation");
    public Counter GcPauseSeconds { get; } = new("dotnet_gc_pause_seconds_total", "Time the process was paused for garbage collection.");
    public Gauge GcHeapBytes { get; } = new("dotnet_gc_heap_size_bytes", "Managed heap size after the last garbage collection.");
    public Counter GcAllocatedBytes { get; } = new("dotnet_gc_allocated_bytes_total", "Bytes allocated on the managed heap.");
    public Counter ProcessCpuSeconds { get; } = new("process_cpu_seconds_total", "User and system CPU time of the process.");
    public Gauge ProcessResidentBytes { get; } = new("process_resident_memory_bytes", "Resident memory of the process.");
    public Gauge ProcessStartTime { get; } = new("process_start_time_seconds", "When the process started, in seconds since the Unix epoch.");

    public ServerMetrics()
    {
        // Series without labels (and the fixed kinds) exist from the start, so a scrape shows them at zero.
        SyncWakeups.Add(0);
        LongPollsWaiting.Set(0, SyncLongPoll);
        LongPollsWaiting.Set(0, SlidingSyncLongPoll);
        DatabaseConnectionsInUse.Set(0);
        EventsPersisted.Add(0, "local");
        EventsPersisted.Add(0, "remote");
    }

    public IEnumerable<MetricFamily> All =>
    [
        HttpRequests, HttpRequestDuration, LongPollsWaiting, SyncWakeups, EventsPersisted, DatabaseTransactionDuration,
        DatabaseConnectionsInUse, FederationQueuePending, AppServiceQueuePending, ReplicationMessages, BackgroundJobRuns, ReplicationConnected,
        GcCollections, GcPauseSeconds, GcHeapBytes, GcAllocatedBytes, ProcessCpuSeconds, ProcessResidentBytes, ProcessStartTime,
    ];
}
