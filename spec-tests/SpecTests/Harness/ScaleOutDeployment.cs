namespace Matrix.SpecTests.Harness;

/// <summary>
/// A deployment of several processes as README "Scaling out" describes it: one PostgreSQL database, a private Redis,
/// a main process, two sync workers, two event writers, a media worker, a federation reader, a federation sender, a pusher, an
/// application-service sender and a background worker running the clean-ups
/// (for an application service the tests play), and HAProxy with the repository's reference config in
/// front (its address is the server name, so other servers federate through it too).
/// </summary>
public sealed class ScaleOutDeployment : IAsyncLifetime
{
    /// <summary>
    /// Only the main process and the two sync workers (benchmarks: what replication itself costs); the balancer sends
    /// the other roles' requests to the main process.
    /// </summary>
    public bool SyncWorkersOnly { get; init; }

    private PostgresTestDatabase _database = null!;
    public TestRedisServer Redis { get; private set; } = null!;
    public HomeserverProcess Main { get; private set; } = null!;
    public HomeserverProcess Sync1 { get; private set; } = null!;
    public HomeserverProcess Sync2 { get; private set; } = null!;
    public HomeserverProcess Media { get; private set; } = null!;
    public HomeserverProcess FederationReader { get; private set; } = null!;
    public HomeserverProcess FederationSender { get; private set; } = null!;
    public HomeserverProcess Pusher { get; private set; } = null!;
    public HomeserverProcess AppServiceSender { get; private set; } = null!;
    public HomeserverProcess Background { get; private set; } = null!;
    public HomeserverProcess EventWriter1 { get; private set; } = null!;
    public HomeserverProcess EventWriter2 { get; private set; } = null!;
    /// <summary>An application service whose users are <c>@chat_...</c>, registered with every process.</summary>
    public FakeAppService AppService { get; } = new();
    private string _registrationPath = "";
    public TestLoadBalancer Balancer { get; private set; } = null!;
    private readonly List<IAsyncDisposable> _started = [];
    public string ServerName { get; private set; } = "";

    /// <summary>A client of the deployment, through the load balancer.</summary>
    public MatrixClient Client => new(Balancer.BaseUrl, ServerName);

    /// <summary>A client talking to one process directly (to pin a user's syncs to a given worker).</summary>
    public MatrixClient ClientOf(HomeserverProcess process) => new(process.BaseUrl, ServerName);

    public async Task InitializeAsync()
    {
        _database = await PostgresTestDatabase.CreateAsync();
        _started.Add(_database);
        Redis = await TestRedisServer.StartAsync();
        _started.Add(Redis);
        _started.Add(AppService);
        _registrationPath = Path.Combine(Directory.CreateTempSubdirectory("hs-as-").FullName, "registration.yaml");
        await File.WriteAllTextAsync(_registrationPath, AppService.RegistrationYaml("@chat_.*", "#chat_.*"));
        var balancerPort = FreePorts.Next();
        ServerName = $"127.0.0.1:{balancerPort}";
        Main = new HomeserverProcess(_database.Yaml, FederationFixture.FederationYaml + "\n" + WorkerYaml("main", "main"),
            listenerYaml: "    x_forwarded: true\n", serverName: ServerName, metricsListener: true);
        _started.Add(Main);
        await Main.StartAsync();
        // Workers sign nothing, but they are the same server: they read the main process's key.
        var sharedKey = $"signing_key_path: {Path.Combine(Main.DataDir, "signing.key")}\n";
        Sync1 = new HomeserverProcess(_database.Yaml, WorkerYaml("sync1", "sync") + "\n" + sharedKey,
            listenerYaml: "    resources: [client]\n    x_forwarded: true\n", serverName: ServerName);
        Sync2 = new HomeserverProcess(_database.Yaml, WorkerYaml("sync2", "sync") + "\n" + sharedKey,
            listenerYaml: "    resources: [client]\n    x_forwarded: true\n", serverName: ServerName);
        // The federation sender and the pusher listen only for their health and metrics.
        FederationSender = new HomeserverProcess(_database.Yaml, FederationFixture.FederationYaml + "\n" + WorkerYaml("sender1", "federation_sender")
            + "\n" + sharedKey, listenerYaml: "    resources: [metrics]\n", serverName: ServerName);
        Pusher = new HomeserverProcess(_database.Yaml, WorkerYaml("pusher1", "pusher") + "\n" + sharedKey,
            listenerYaml: "    resources: [metrics]\n", serverName: ServerName);
        AppServiceSender = new HomeserverProcess(_database.Yaml, WorkerYaml("assender1", "app_service_sender") + "\n" + sharedKey,
            listenerYaml: "    resources: [metrics]\n", serverName: ServerName);
        // The media worker keeps its files where the main process does (one machine here; a shared volume or S3 elsewhere).
        Media = new HomeserverProcess(_database.Yaml, WorkerYaml("media1", "media") + "\n" + sharedKey
            + $"\nmedia_store_path: {Path.Combine(Main.DataDir, "media")}\n",
            listenerYaml: "    resources: [client]\n    x_forwarded: true\n", serverName: ServerName);
        FederationReader = new HomeserverProcess(_database.Yaml, FederationFixture.FederationYaml + "\n" + WorkerYaml("fedreader1", "federation_reader")
            + "\n" + sharedKey, listenerYaml: "    resources: [federation, metrics]\n    x_forwarded: true\n", serverName: ServerName);
        Background = new HomeserverProcess(_database.Yaml, WorkerYaml("bg1", "background") + "\n" + sharedKey,
            listenerYaml: "    resources: [metrics]\n", serverName: ServerName);
        // The event writers sign what they write with the server's key; they take clients' sends and other servers' transactions.
        EventWriter1 = new HomeserverProcess(_database.Yaml, FederationFixture.FederationYaml + "\n" + WorkerYaml("writer1", "event_writer")
            + "\n" + sharedKey, listenerYaml: "    resources: [client, federation, metrics]\n    x_forwarded: true\n", serverName: ServerName);
        EventWriter2 = new HomeserverProcess(_database.Yaml, FederationFixture.FederationYaml + "\n" + WorkerYaml("writer2", "event_writer")
            + "\n" + sharedKey, listenerYaml: "    resources: [client, federation, metrics]\n    x_forwarded: true\n", serverName: ServerName);
        var workers = SyncWorkersOnly ? [Sync1, Sync2]
            : new[] { Sync1, Sync2, Media, FederationReader, FederationSender, Pusher, AppServiceSender, Background, EventWriter1, EventWriter2 };
        _started.AddRange(workers);
        await Task.WhenAll(workers.Select(worker => worker.StartAsync()));
        int PortOr(HomeserverProcess worker) => SyncWorkersOnly ? Main.Port : worker.Port;
        Balancer = await TestLoadBalancer.StartAsync(balancerPort, Main.Port, Sync1.Port, Sync2.Port, PortOr(Media), PortOr(FederationReader),
            PortOr(EventWriter1), PortOr(EventWriter2));
        _started.Add(Balancer);
    }

    /// <summary>
    /// The worker section and, alike on every process, the application service's registration and push gateways
    /// allowed on 127.0.0.2, where the tests play one.
    /// </summary>
    private string WorkerYaml(string name, string role) =>
        $"worker:\n  instance_name: {name}\n  role: {role}\n  redis: \"{Redis.Configuration}\"\n"
        + (SyncWorkersOnly ? "" : "  federation_sender_instances: [sender1]\n  pusher_instances: [pusher1]\n  app_service_sender_instances: [assender1]\n"
            + "  background_tasks_instance: bg1\n  event_writer_instances: [writer1, writer2]\n")
        + "\n"
        + $"app_service_config_files:\n  - {_registrationPath}\n\noutbound_http:\n  ip_range_allowlist: [\"127.0.0.2/32\"]\n";

    /// <summary>The operating-system process of each part, by name (benchmarks watch their CPU).</summary>
    public Dictionary<string, int> ProcessIds() => SyncWorkersOnly
        ? new() { ["main"] = Main.ProcessId, ["sync1"] = Sync1.ProcessId, ["sync2"] = Sync2.ProcessId, ["haproxy"] = Balancer.ProcessId, ["redis"] = Redis.ProcessId }
        : new()
        {
            ["main"] = Main.ProcessId, ["sync1"] = Sync1.ProcessId, ["sync2"] = Sync2.ProcessId, ["media"] = Media.ProcessId,
            ["federation_reader"] = FederationReader.ProcessId, ["federation_sender"] = FederationSender.ProcessId,
            ["pusher"] = Pusher.ProcessId, ["app_service_sender"] = AppServiceSender.ProcessId, ["background"] = Background.ProcessId,
            ["event_writer1"] = EventWriter1.ProcessId, ["event_writer2"] = EventWriter2.ProcessId, ["haproxy"] = Balancer.ProcessId,
            ["redis"] = Redis.ProcessId,
        };

    /// <summary>What every process printed, for a failure's message.</summary>
    public string Output =>
        $"--- main\n{Main.Output}\n--- sync1\n{Sync1.Output}\n--- sync2\n{Sync2.Output}\n--- media\n{Media.Output}"
        + $"\n--- federation reader\n{FederationReader.Output}"
        + $"\n--- federation sender\n{FederationSender.Output}\n--- pusher\n{Pusher.Output}\n--- application-service sender\n{AppServiceSender.Output}"
        + $"\n--- background\n{Background.Output}\n--- event writer 1\n{EventWriter1.Output}\n--- event writer 2\n{EventWriter2.Output}";

    /// <summary>Stops what started, last first.</summary>
    public async Task DisposeAsync()
    {
        for (var i = _started.Count - 1; i >= 0; i--)
            await _started[i].DisposeAsync();
    }
}
