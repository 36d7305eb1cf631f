using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// Real crypto clients: spec-tests/js/e2ee-scenario.mjs drives matrix-js-sdk with its Rust crypto (WebAssembly) through
/// cross-signing, 50 encrypted messages both ways and a key-backup restore on a second device; on one server, and with
/// the two users on two federated servers.
/// </summary>
public sealed class E2eeScenarioTests(TwoServersSqlitePostgres federation) : IClassFixture<TwoServersSqlitePostgres>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(4);

    [Fact]
    public Task Rust_crypto_clients_on_one_server_decrypt_everything_and_restore_the_key_backup() =>
        NodeScenario.RunAsync("e2ee-scenario.mjs", [federation.Servers[1].BaseUrl, federation.Servers[1].BaseUrl], Timeout);

    [Fact]
    public Task Rust_crypto_clients_on_two_federated_servers_decrypt_everything_and_restore_the_key_backup() =>
        NodeScenario.RunAsync("e2ee-scenario.mjs", [federation.Servers[0].BaseUrl, federation.Servers[1].BaseUrl], Timeout);
}
