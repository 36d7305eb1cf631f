using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// Password login against a real OpenLDAP (slapd with a seeded tree): search-then-bind with a service account,
/// direct binds through a DN template, LDAPS and StartTLS checked against a test CA, the account created at the first
/// login with the directory's display name (not in an appservice's exclusive namespace), disabled entries refused,
/// filter injection refused, directory passwords for user-interactive auth, and outages (directory stopped, or
/// hanging) answered within the timeout while a local admin still gets in.
/// </summary>
public sealed class LdapLoginTests : IAsyncLifetime
{
    private const int TimeoutMs = 2000;
    // Without the timeout a login against a silent directory waits for ever; the bound is generous for a loaded machine.
    private const int WithoutTimeoutMs = 30_000;
    private readonly string _dir = Directory.CreateTempSubdirectory("hs-ldap-").FullName;
    private TestCertificates _certificates = null!;
    private TestLdapServer _ldap = null!;
    private readonly List<(HomeserverProcess Server, TestDatabase Database)> _servers = [];

    public async Task InitializeAsync()
    {
        _certificates = new TestCertificates(_dir);
        _ldap = await TestLdapServer.StartAsync(_certificates);
    }

    private string LdapYaml(string uri, string extra = "") => $"""
        ldap:
          enabled: true
          uri: {uri}
          base_dn: {TestLdapServer.PeopleDn}
          user_filter: "(&(objectClass=inetOrgPerson)(uid={"{username}"}))"
          disabled_filter: "(employeeType=disabled)"
          timeout_ms: {TimeoutMs}
        {extra}
        """;

    private string SearchThenBind(string uri, string extra = "") =>
        LdapYaml(uri, $"  bind_dn: {TestLdapServer.ReaderDn}\n  bind_password: {TestLdapServer.ReaderPassword}\n{extra}");

    private async Task<MatrixClient> StartServerAsync(string ldapYaml)
    {
        var database = await TestDatabase.CreateAsync("sqlite");
        var server = new HomeserverProcess(database.Yaml, ldapYaml);
        _servers.Add((server, database));
        await server.StartAsync();
        return new MatrixClient(server.BaseUrl, server.ServerName);
    }

    [Fact]
    public async Task A_directory_password_logs_in_and_creates_the_account_and_nothing_else_does()
    {
        // carol's name belongs to an application service's exclusive namespace.
        var registration = Path.Combine(_dir, "claims-carol.yaml");
        await File.WriteAllTextAsync(registration, """
            id: claims-carol
            url: null
            as_token: claims-carol-as
            hs_token: claims-carol-hs
            sender_localpart: claimsbot
            namespaces:
              users:
                - exclusive: true
                  regex: '@carol:.*'
            """);
        var c = await StartServerAsync(SearchThenBind(_ldap.Uri) + $"\napp_service_config_files:\n  - {registration}\n");
        Assert.Equal(403, (await c.LoginAsync("carol", "carol password")).Status);
        Assert.Equal(404, (await c.GetAsync($"/_matrix/client/v3/profile/{Uri.EscapeDataString($"@carol:{c.ServerName}")}")).Status);
        var login = await c.LoginAsync("alice", "alice password");
        Assert.True(login.Status == 200, login.ToString());
        var alice = login.Str("user_id");
        Assert.Equal($"@alice:{c.ServerName}", alice);
        Assert.Equal("Alice Liddell", (await c.GetAsync($"/_matrix/client/v3/profile/{Uri.EscapeDataString(alice)}/displayname")).Str("displayname"));
        Assert.Equal(alice, (await c.LoginAsync(alice, "alice password")).Str("user_id"));

        foreach (var (user, password) in new[] { ("alice", "wrong"), ("alice", ""), ("zed", "alice password"), ("*", "alice password"),
                     ("al*", "alice password"), ("dave", "dave password") })
        {
            var refused = await c.LoginAsync(user, password);
            Assert.True(refused.Status == 403 && refused.Errcode == "M_FORBIDDEN", $"{user}: {refused}");
        }
        Assert.Equal(403, (await c.LoginAsync("bob", "alice password")).Status);

        // The password belongs to the directory: no change here, but it proves the user for interactive auth.
        var token = login.Str("access_token");
        var capabilities = await c.GetAsync("/_matrix/client/v3/capabilities", token);
        Assert.False(capabilities.Body!["capabilities"]!["m.change_password"]!["enabled"]!.GetValue<bool>());
        Assert.Equal(403, (await c.PostAsync("/_matrix/client/v3/account/password", new { new_password = "new password" }, token)).Status);
        var second = await c.LoginAsync("alice", "alice password");
        var deviceId = second.Str("device_id");
        var challenge = await c.DeleteAsync($"/_matrix/client/v3/devices/{deviceId}", new { }, token);
        Assert.Equal(401, challenge.Status);
        var session = challenge.Str("session");
        Assert.Equal("m.login.password", challenge.Body!["flows"]![0]!["stages"]![0]!.GetValue<string>());
        var wrong = await c.DeleteAsync($"/_matrix/client/v3/devices/{deviceId}", new { auth = MatrixClient.PasswordAuth(session, alice, "wrong") }, token);
        Assert.Equal("M_FORBIDDEN", wrong.Errcode);
        var deleted = await c.DeleteAsync($"/_matrix/client/v3/devices/{deviceId}", new { auth = MatrixClient.PasswordAuth(session, alice, "alice password") }, token);
        Assert.True(deleted.Status == 200, deleted.ToString());
    }

    [Fact]
    public async Task Direct_binds_ldaps_and_starttls_work_and_an_untrusted_certificate_is_refused()
    {
        var template = await StartServerAsync(LdapYaml(_ldap.Uri, $"  bind_dn_template: \"uid={{username}},{TestLdapServer.PeopleDn}\""));
        Assert.Equal(200, (await template.LoginAsync("carol", "carol password")).Status);
        Assert.Equal(403, (await template.LoginAsync("carol", "wrong")).Status);

        var ldaps = await StartServerAsync(SearchThenBind(_ldap.SecureUri, $"  tls_ca_file: {_certificates.CaPath}"));
        Assert.Equal(200, (await ldaps.LoginAsync("bob", "bob password")).Status);
        var startTls = await StartServerAsync(SearchThenBind(_ldap.Uri, $"  start_tls: true\n  tls_ca_file: {_certificates.CaPath}"));
        Assert.Equal(200, (await startTls.LoginAsync("bob", "bob password")).Status);

        var untrusted = await StartServerAsync(SearchThenBind(_ldap.SecureUri));
        Assert.Equal(503, (await untrusted.LoginAsync("bob", "bob password")).Status);
    }

    [Fact]
    public async Task A_directory_outage_is_a_clear_error_within_the_timeout_and_a_local_admin_still_logs_in()
    {
        var c = await StartServerAsync(SearchThenBind(_ldap.Uri));
        var admin = await c.RegisterAsync("localadmin", "local admin password");
        Assert.Equal(200, (await c.LoginAsync("alice", "alice password")).Status);

        await _ldap.StopAsync();
        try
        {
            var watch = Stopwatch.StartNew();
            var down = await c.LoginAsync("alice", "alice password");
            Assert.Equal(503, down.Status);
            Assert.Contains("directory", down.Body!["error"]!.GetValue<string>());
            Assert.True(watch.ElapsedMilliseconds < WithoutTimeoutMs, $"the login took {watch.ElapsedMilliseconds} ms");
            Assert.Equal(200, (await c.LoginAsync(admin.Localpart, "local admin password")).Status);
        }
        finally
        {
            await _ldap.StartAgainAsync();
        }
        Assert.Equal(200, (await c.LoginAsync("alice", "alice password")).Status);

        // A directory that accepts connections and never answers: the login still ends at the timeout.
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var accepted = new List<TcpClient>();
        _ = Task.Run(async () =>
        {
            while (true)
                accepted.Add(await silent.AcceptTcpClientAsync());
        });
        var hanging = await StartServerAsync(SearchThenBind($"ldap://127.0.0.1:{((IPEndPoint)silent.LocalEndpoint).Port}"));
        var stopwatch = Stopwatch.StartNew();
        Assert.Equal(503, (await hanging.LoginAsync("alice", "alice password")).Status);
        Assert.True(stopwatch.ElapsedMilliseconds < WithoutTimeoutMs, $"the login took {stopwatch.ElapsedMilliseconds} ms");
    }

    public async Task DisposeAsync()
    {
        foreach (var (server, database) in _servers)
        {
            await server.DisposeAsync();
            await database.DisposeAsync();
        }
        await _ldap.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }
}
