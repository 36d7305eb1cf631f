using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>The operator's command line: creating users beside a running server, writing a config, refusing a bad one.</summary>
public abstract class CommandLineTests(ServerFixture fixture)
{
    [Fact]
    public async Task Register_user_creates_an_admin_who_can_log_in_on_the_running_server()
    {
        var name = MatrixClient.UniqueName("ops");
        var (exitCode, output) = await fixture.Server.RunCliAsync("register-user", "--config", "{config}", "--user", name, "--password", "s3cret", "--admin");
        Assert.True(exitCode == 0, output);

        var c = fixture.Client;
        var login = await c.LoginAsync(name, "s3cret");
        Assert.Equal(200, login.Status);
        Assert.Equal(200, (await c.GetAsync("/_synapse/admin/v1/registration_tokens", login.Str("access_token"))).Status);

        var (again, message) = await fixture.Server.RunCliAsync("register-user", "--config", "{config}", "--user", name, "--password", "x");
        Assert.Equal(1, again);
        Assert.Contains("M_USER_IN_USE", message);
    }

    [Fact]
    public async Task Generated_config_is_the_documented_sample_and_bad_configs_are_refused_by_key()
    {
        var dir = Directory.CreateTempSubdirectory("hs-cli-").FullName;
        try
        {
            var path = Path.Combine(dir, "generated.yaml");
            var (exitCode, _) = await fixture.Server.RunCliAsync("--generate-config", path);
            Assert.Equal(0, exitCode);
            var text = await File.ReadAllTextAsync(path);
            Assert.Contains("server_name: localhost", text);
            Assert.Contains("enabled: false", text);

            var bad = Path.Combine(dir, "bad.yaml");
            await File.WriteAllTextAsync(bad, "listeners:\n  - port: many\n");
            var (badExit, output) = await fixture.Server.RunCliAsync("--config", bad);
            Assert.NotEqual(0, badExit);
            Assert.Contains("'listeners[0].port'", output);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}

public sealed class CommandLineTestsSqlite(SqliteServer f) : CommandLineTests(f), IClassFixture<SqliteServer>;
public sealed class CommandLineTestsPostgres(PostgresServer f) : CommandLineTests(f), IClassFixture<PostgresServer>;
