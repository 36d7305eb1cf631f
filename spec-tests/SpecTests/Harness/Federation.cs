namespace Matrix.SpecTests.Harness;

/// <summary>
/// Several homeservers on loopback that federate with each other: server names <c>127.0.0.1:&lt;port&gt;</c>, plain
/// HTTP between them (the config's test-only <c>federation.plain_http</c>), each with its own database.
/// </summary>
public class FederationFixture(string[] engines, bool tls = false, string extraYaml = "") : IAsyncLifetime
{
    public const string FederationYaml = "federation:\n  plain_http: true\n";
    private TestCertificates? _certificates;

    private readonly List<TestDatabase> _databases = [];

    public List<HomeserverProcess> Servers { get; } = [];

    public MatrixClient ClientOf(int index) => new(Servers[index].BaseUrl, Servers[index].ServerName);

    public async Task InitializeAsync()
    {
        if (tls)
            _certificates = new TestCertificates(Directory.CreateTempSubdirectory("hs-ca-").FullName);
        foreach (var engine in engines)
        {
            var database = await TestDatabase.CreateAsync(engine);
            _databases.Add(database);
            Servers.Add(tls
                ? new HomeserverProcess(database.Yaml, extraYaml, tls: _certificates)
                : new HomeserverProcess(database.Yaml, FederationYaml + "\n" + extraYaml, addressAsServerName: true));
        }
        await Task.WhenAll(Servers.Select(s => s.StartAsync()));
    }

    public async Task DisposeAsync()
    {
        foreach (var server in Servers)
            await server.DisposeAsync();
        foreach (var database in _databases)
            await database.DisposeAsync();
    }
}

public sealed class TwoServersSqlitePostgres() : FederationFixture(["sqlite", "postgres"]);

public sealed class ThreeServersSqlitePostgres() : FederationFixture(["sqlite", "postgres", "postgres"]);

/// <summary>
/// Two servers federating over HTTPS: each has a federation-only TLS listener with a certificate from a test CA both
/// trust; legacy unauthenticated media is on, as older servers fetch media through it.
/// </summary>
public sealed class TwoServersOverTls() : FederationFixture(["sqlite", "postgres"], tls: true, extraYaml: "media:\n  legacy_unauthenticated_access: true\n");
