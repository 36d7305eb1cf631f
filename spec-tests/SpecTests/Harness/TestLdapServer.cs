using System.Diagnostics;

namespace Matrix.SpecTests.Harness;

/// <summary>
/// A private OpenLDAP server (Debian <c>slapd</c>, installed by the test command) on a free loopback port, with its own
/// config and database in a temp folder, seeded with a small company: people (one disabled by
/// <c>employeeType: disabled</c>), a read-only service account, and groups, one nested in another. With
/// <see cref="TestCertificates"/> it serves LDAPS and StartTLS with a certificate for 127.0.0.1. It can be stopped
/// and started again (an outage).
/// </summary>
public sealed class TestLdapServer : IAsyncDisposable
{
    public const string BaseDn = "dc=example,dc=org";
    public const string AdminDn = "cn=admin,dc=example,dc=org";
    public const string AdminPassword = "admin-secret";
    public const string ReaderDn = "cn=reader,dc=example,dc=org";
    public const string ReaderPassword = "reader secret";
    public const string PeopleDn = "ou=people,dc=example,dc=org";
    public const string GroupsDn = "ou=groups,dc=example,dc=org";

    private readonly string _dir = Directory.CreateTempSubdirectory("slapd-").FullName;
    private readonly bool _tls;
    private Process? _slapd;

    public int Port { get; } = FreePorts.Next();
    public int SecurePort { get; } = FreePorts.Next();
    public string Uri => $"ldap://127.0.0.1:{Port}";
    public string SecureUri => $"ldaps://127.0.0.1:{SecurePort}";

    private TestLdapServer(TestCertificates? tls)
    {
        _tls = tls is not null;
        Directory.CreateDirectory(Path.Combine(_dir, "db"));
        var tlsConfig = "";
        if (tls is not null)
        {
            var (certificate, key) = tls.IssueForLoopback(_dir);
            tlsConfig = $"TLSCACertificateFile {tls.CaPath}\nTLSCertificateFile {certificate}\nTLSCertificateKeyFile {key}\n";
        }
        File.WriteAllText(Path.Combine(_dir, "slapd.conf"), $"""
            include /etc/ldap/schema/core.schema
            include /etc/ldap/schema/cosine.schema
            include /etc/ldap/schema/inetorgperson.schema
            include /etc/ldap/schema/nis.schema
            modulepath /usr/lib/ldap
            moduleload back_mdb
            pidfile {_dir}/slapd.pid
            {tlsConfig}
            database mdb
            suffix "{BaseDn}"
            rootdn "{AdminDn}"
            rootpw {AdminPassword}
            # As a production directory would: 500 entries per search, but the sync account may page through all.
            limits dn.exact="{ReaderDn}" size.soft=500 size.hard=500 size.prtotal=unlimited
            directory {_dir}/db
            maxsize 1073741824
            dbnosync
            index objectClass eq
            index uid,cn,member eq

            """);
    }

    public static async Task<TestLdapServer> StartAsync(TestCertificates? tls = null)
    {
        Assert.True(File.Exists("/usr/sbin/slapd"), "slapd is not installed: the test command installs Debian's slapd and ldap-utils");
        var server = new TestLdapServer(tls);
        await server.StartAgainAsync();
        await server.ModifyAsync(SeedLdif, add: true);
        return server;
    }

    public async Task StartAgainAsync()
    {
        var urls = $"ldap://127.0.0.1:{Port}/" + (_tls ? $" ldaps://127.0.0.1:{SecurePort}/" : "");
        _slapd = await ServiceProcess.StartAsync("/usr/sbin/slapd", ["-d", "0", "-f", Path.Combine(_dir, "slapd.conf"), "-h", urls], Port, "slapd");
    }

    public async Task StopAsync()
    {
        await ServiceProcess.StopAsync(_slapd);
        _slapd = null;
    }

    /// <summary>Applies LDIF as the directory's admin: entries to add, or (with <paramref name="add"/> false) changetype records.</summary>
    public async Task ModifyAsync(string ldif, bool add = false)
    {
        var info = new ProcessStartInfo(add ? "ldapadd" : "ldapmodify", ["-x", "-H", Uri, "-D", AdminDn, "-w", AdminPassword])
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        using var process = Process.Start(info)!;
        // Both outputs are drained while the input is written: a large LDIF fills a pipe otherwise.
        var errors = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEndAsync();
        await process.StandardInput.WriteAsync(ldif);
        process.StandardInput.Close();
        await output;
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"ldap{(add ? "add" : "modify")} failed: {await errors}");
    }

    public static string Person(string uid, string name, string password, string? department = null, bool disabled = false) => $"""
        dn: uid={uid},{PeopleDn}
        objectClass: inetOrgPerson
        uid: {uid}
        cn: {name}
        sn: {name.Split(' ')[^1]}
        mail: {uid}@example.org
        userPassword: {password}
        {(department is null ? "" : $"departmentNumber: {department}\n")}{(disabled ? "employeeType: disabled\n" : "")}
        """;

    private static readonly string SeedLdif = string.Join("\n", [
        $"""
        dn: {BaseDn}
        objectClass: dcObject
        objectClass: organization
        o: Example
        dc: example

        dn: {ReaderDn}
        objectClass: organizationalRole
        objectClass: simpleSecurityObject
        cn: reader
        userPassword: {ReaderPassword}

        dn: {PeopleDn}
        objectClass: organizationalUnit
        ou: people

        dn: {GroupsDn}
        objectClass: organizationalUnit
        ou: groups

        """,
        Person("alice", "Alice Liddell", "alice password", "Engineering"),
        Person("bob", "Bob Builder", "bob password", "Engineering"),
        Person("carol", "Carol Danvers", "carol password", "Sales"),
        Person("dave", "Dave Disabled", "dave password", "Sales", disabled: true),
        $"""
        dn: cn=platform,{GroupsDn}
        objectClass: groupOfNames
        cn: platform
        member: uid=bob,{PeopleDn}

        dn: cn=engineering,{GroupsDn}
        objectClass: groupOfNames
        cn: engineering
        member: uid=alice,{PeopleDn}
        member: cn=platform,{GroupsDn}

        dn: cn=sales,{GroupsDn}
        objectClass: groupOfNames
        cn: sales
        member: uid=carol,{PeopleDn}
        member: uid=dave,{PeopleDn}

        """]);

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        Directory.Delete(_dir, recursive: true);
    }
}
