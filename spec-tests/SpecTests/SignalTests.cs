using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// Signals as a service manager sends them: SIGTERM answers waiting long-polls at once and exits by itself; SIGHUP
/// reloads logging, rate limits, application services and renewed TLS certificates, says what it reloaded and what
/// needs a restart, and leaves everything as it was when the file is invalid.
/// </summary>
public abstract class SignalTests(string engine)
{
    private const string V3 = "/_matrix/client/v3";
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Sigterm_answers_a_waiting_long_poll_at_once_and_exits()
    {
        await using var database = await TestDatabase.CreateAsync(engine);
        await using var server = new HomeserverProcess(database.Yaml, metricsListener: true);
        await server.StartAsync();
        var c = new MatrixClient(server.BaseUrl, server.ServerName);
        var alice = await c.RegisterAsync();
        var since = (await SyncTests.SyncAsync(c, alice))["next_batch"]!.GetValue<string>();

        var poll = c.GetAsync($"{V3}/sync?since={since}&timeout=60000", alice.AccessToken);
        await Eventually.HoldsAsync(async () => (await server.ScrapeMetricsAsync()).Value("homeserver_long_polls_waiting",
            "homeserver_long_polls_waiting", ("kind", "sync")) >= 1, "the sync waiting");
        server.Signal("TERM");

        // Far below the poll's 60 s: it was answered because of the shutdown, not its timeout.
        var answer = await poll.WaitAsync(Generous);
        Assert.Equal(200, answer.Status);
        Assert.NotNull(answer.Body!["next_batch"]);
        Assert.True(await server.WaitForExitAsync(Generous), "the server did not exit after SIGTERM");
        Assert.Equal(0, server.ExitCode);
    }

    [Fact]
    public async Task Sighup_reloads_logging_and_rate_limits_and_says_what_needs_a_restart()
    {
        await using var database = await TestDatabase.CreateAsync(engine);
        await using var server = new HomeserverProcess(database.Yaml);
        await server.StartAsync();
        var c = new MatrixClient(server.BaseUrl, server.ServerName);
        var alice = await c.RegisterAsync();
        Assert.Equal(200, (await c.LoginAsync(alice.UserId, alice.Password)).Status);
        Assert.Equal(200, (await c.LoginAsync(alice.UserId, alice.Password)).Status);

        server.UpdateConfig("""
            logging:
              level: Information
              format: json
              access_log: true

            rate_limits:
              login: { per_second: 0.001, burst: 1 }
              registration: { per_second: 1000, burst: 1000 }
              client_requests: { per_second: 1000, burst: 1000 }

            user_directory:
              search_all_users: true

            """);
        server.Signal("HUP");
        var reloaded = await LogEntryAsync(server, e => e["message"]!.GetValue<string>().StartsWith("Reloaded", StringComparison.Ordinal));
        var message = reloaded["message"]!.GetValue<string>();
        Assert.Contains("format json", message);
        Assert.Contains("rate limits", message);
        Assert.Contains("user_directory take effect on restart", message);

        // Still running (SIGHUP's default action would have ended it), now logging each request as JSON.
        Assert.Equal(200, (await c.GetAsync($"{V3}/account/whoami", alice.AccessToken)).Status);
        await LogEntryAsync(server, e => e["route"]?.GetValue<string>() == "/_matrix/client/v3/account/whoami"
            && e["user_id"]?.GetValue<string>() == alice.UserId);
        // The login limit is now a burst of one.
        Assert.Equal(200, (await c.LoginAsync(alice.UserId, alice.Password)).Status);
        Assert.Equal("M_LIMIT_EXCEEDED", (await c.LoginAsync(alice.UserId, alice.Password)).Errcode);

        server.UpdateConfig("logging:\n  level: Information\n  format: xml\n");
        server.Signal("HUP");
        var refused = await LogEntryAsync(server, e => e["message"]!.GetValue<string>().Contains("is invalid, nothing was changed"));
        Assert.Equal("error", refused["level"]!.GetValue<string>());
        Assert.Contains("logging.format", refused["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task Sighup_reloads_application_services_and_renewed_tls_certificates()
    {
        await using var database = await TestDatabase.CreateAsync(engine);
        var certificates = new TestCertificates(Directory.CreateTempSubdirectory("hs-ca-").FullName);
        await using var server = new HomeserverProcess(database.Yaml, tls: certificates);
        await server.StartAsync();
        var c = new MatrixClient(server.BaseUrl, server.ServerName);
        var servedBefore = await ServedCertificateAsync(server.ServerName);
        var registration = Path.Combine(server.DataDir, "late-bridge.yaml");
        await File.WriteAllTextAsync(registration, """
            id: late-bridge
            url: null
            as_token: late-bridge-as-token
            hs_token: late-bridge-hs-token
            sender_localpart: latebot
            namespaces:
              users:
                - exclusive: true
                  regex: '@late_.*'
            """);
        Assert.Equal(401, (await c.GetAsync($"{V3}/account/whoami", "late-bridge-as-token")).Status);

        certificates.IssueForLoopback(server.DataDir);
        server.UpdateConfig($"app_service_config_files:\n  - {registration}\n");
        server.Signal("HUP");
        await Eventually.HoldsAsync(async () => (await c.GetAsync($"{V3}/account/whoami", "late-bridge-as-token")).Status == 200,
            () => $"the application service after SIGHUP, in:\n{server.Output}");
        Assert.Equal($"@latebot:{server.ServerName}", (await c.GetAsync($"{V3}/account/whoami", "late-bridge-as-token")).Str("user_id"));
        Assert.Equal("M_EXCLUSIVE", (await c.PostAsync($"{V3}/register", new { username = "late_someone", password = "a password 123",
            auth = new { type = "m.login.dummy" } })).Errcode);
        var servedAfter = await ServedCertificateAsync(server.ServerName);
        Assert.NotEqual(servedBefore, servedAfter);
    }

    /// <summary>The serial number of the certificate a TLS listener presents to a new connection.</summary>
    private static async Task<string> ServedCertificateAsync(string hostAndPort)
    {
        var port = int.Parse(hostAndPort.Split(':')[1]);
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(System.Net.IPAddress.Loopback, port);
        await using var tls = new System.Net.Security.SslStream(tcp.GetStream(), false, (_, _, _, _) => true);
        await tls.AuthenticateAsClientAsync("127.0.0.1");
        return tls.RemoteCertificate!.GetSerialNumberString();
    }

    /// <summary>Waits for a JSON log line the server wrote after the reload that matches.</summary>
    private static async Task<JsonObject> LogEntryAsync(HomeserverProcess server, Func<JsonObject, bool> match)
    {
        JsonObject? found = null;
        await Eventually.HoldsAsync(() =>
        {
            found = server.StandardOutputLines.Where(line => line.StartsWith('{')).Select(line => JsonNode.Parse(line)!.AsObject())
                .LastOrDefault(match);
            return Task.FromResult(found is not null);
        }, () => $"the log entry, in:\n{server.Output}");
        return found!;
    }
}

public sealed class SignalTestsSqlite() : SignalTests("sqlite");
public sealed class SignalTestsPostgres() : SignalTests("postgres");
