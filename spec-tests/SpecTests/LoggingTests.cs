using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// <c>logging.format: json</c> and <c>logging.access_log</c>: every line the server writes to standard output is one
/// JSON object with time, level, category and message (and the request's ID and user where known); access lines
/// carry method, route template, status and duration; no access token or password is ever written.
/// </summary>
public abstract class LoggingTests(string engine)
{
    private const string Password = "a password nobody logs 4711";
    private static readonly string[] Levels = ["trace", "debug", "info", "warning", "error", "critical"];

    [Fact]
    public async Task Json_logs_are_one_object_a_line_with_request_context_and_no_secrets()
    {
        await using var database = await TestDatabase.CreateAsync(engine);
        await using var server = new HomeserverProcess(database.Yaml, "logging:\n  level: Information\n  format: json\n  access_log: true\n");
        await server.StartAsync();
        var c = new MatrixClient(server.BaseUrl, server.ServerName);
        var alice = await c.RegisterAsync(password: Password);
        var login = await c.LoginAsync(alice.UserId, Password);
        Assert.Equal(200, login.Status);
        Assert.Equal(200, (await c.GetAsync("/_matrix/client/v3/account/whoami", alice.AccessToken)).Status);
        Assert.Equal(200, (await c.GetAsync($"/_matrix/client/v3/account/whoami?access_token={alice.AccessToken}")).Status);
        Assert.Equal(401, (await c.GetAsync("/_matrix/client/v3/account/whoami", "not-a-token-" + alice.AccessToken)).Status);
        await server.StopAsync();

        var lines = server.StandardOutputLines;
        Assert.NotEmpty(lines);
        var entries = lines.Select(line => JsonNode.Parse(line) as JsonObject ?? throw new Xunit.Sdk.XunitException($"not a JSON object: {line}")).ToList();
        foreach (var entry in entries)
        {
            Assert.True(DateTimeOffset.TryParse(entry["time"]!.GetValue<string>(), out _), entry.ToJsonString());
            Assert.Contains(entry["level"]!.GetValue<string>(), Levels);
            Assert.NotEmpty(entry["category"]!.GetValue<string>());
            Assert.NotNull(entry["message"]!.GetValue<string>());
        }
        foreach (var secret in new[] { alice.AccessToken, login.Str("access_token"), Password })
            Assert.DoesNotContain(lines, line => line.Contains(secret, StringComparison.Ordinal));

        var access = entries.Where(e => e["category"]!.GetValue<string>() == "Matrix.Homeserver.AccessLog").ToList();
        var whoami = access.Where(e => e["route"]!.GetValue<string>().EndsWith("/account/whoami", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, whoami.Count);
        foreach (var entry in whoami)
        {
            Assert.Equal("GET", entry["method"]!.GetValue<string>());
            Assert.Equal("/_matrix/client/v3/account/whoami", entry["route"]!.GetValue<string>());
            Assert.True(entry["duration_ms"]!.GetValue<double>() >= 0);
            Assert.DoesNotContain("?", entry["message"]!.GetValue<string>());
            Assert.NotEmpty(entry["request_id"]!.GetValue<string>());
        }
        Assert.Equal([200, 200, 401], whoami.Select(e => e["status"]!.GetValue<int>()));
        Assert.Equal([alice.UserId, alice.UserId, null], whoami.Select(e => e["user_id"]?.GetValue<string>()));
        Assert.Equal(whoami.Count, whoami.Select(e => e["request_id"]!.GetValue<string>()).Distinct().Count());
        Assert.Contains(access, e => e["route"]!.GetValue<string>() == "/_matrix/client/v3/login" && e["status"]!.GetValue<int>() == 200);
    }
}

public sealed class LoggingTestsSqlite() : LoggingTests("sqlite");
public sealed class LoggingTestsPostgres() : LoggingTests("postgres");
