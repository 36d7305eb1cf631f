using System.DirectoryServices.Protocols;
using System.Runtime.InteropServices;
using Matrix.Homeserver.Config;

namespace Matrix.Homeserver.Accounts.Ldap;

/// <summary>
/// Opens connections to the configured directory: LDAPv3, simple binds, no referral chasing, every request bounded
/// by the timeout; LDAPS or StartTLS with the certificate checked against the configured CA file (or the system's).
/// </summary>
public static class LdapConnections
{
    private const int LdapOptXTlsCaCertFile = 0x6002;
    private const int LdapOptXTlsRequireCert = 0x6006;
    private const int LdapOptXTlsDemand = 2;
    private static readonly Lock TlsSetup = new();
    private static string? _caFileSet;

    public static LdapConnection Open(LdapConfig config)
    {
        var uri = new Uri(config.Uri);
        var secure = uri.Scheme == "ldaps";
        if ((secure || config.StartTls) && config.TlsCaFile is { } caFile)
            TrustCaFile(caFile);
        var port = uri.Port > 0 ? uri.Port : secure ? 636 : 389;
        var connection = new LdapConnection(new LdapDirectoryIdentifier(uri.Host, port))
        {
            AuthType = AuthType.Basic,
            Timeout = TimeSpan.FromMilliseconds(config.TimeoutMs),
        };
        connection.SessionOptions.ProtocolVersion = 3;
        connection.SessionOptions.ReferralChasing = ReferralChasingOptions.None;
        if (secure)
            connection.SessionOptions.SecureSocketLayer = true;
        if (config.StartTls)
        {
            // The connection opens on the first request: read the root DSE (nothing secret) so StartTLS has one to upgrade.
            connection.SendRequest(new SearchRequest("", "(objectClass=*)", SearchScope.Base, "supportedExtension"));
            connection.SessionOptions.StartTransportLayerSecurity(null);
        }
        return connection;
    }

    /// <summary>
    /// libldap takes its TLS trust from process-wide options, read when its TLS context is first made: set the CA file
    /// (and demand a valid certificate) before the first secure connection. One CA file per process.
    /// </summary>
    private static void TrustCaFile(string caFile)
    {
        lock (TlsSetup)
        {
            if (_caFileSet == caFile)
                return;
            var library = LoadLibLdap();
            var setOption = Marshal.GetDelegateForFunctionPointer<SetStringOption>(NativeLibrary.GetExport(library, "ldap_set_option"));
            var setIntOption = Marshal.GetDelegateForFunctionPointer<SetIntOption>(NativeLibrary.GetExport(library, "ldap_set_option"));
            var demand = LdapOptXTlsDemand;
            if (setOption(IntPtr.Zero, LdapOptXTlsCaCertFile, caFile) != 0 || setIntOption(IntPtr.Zero, LdapOptXTlsRequireCert, ref demand) != 0)
                throw new InvalidOperationException($"libldap refused the CA file {caFile}");
            _caFileSet = caFile;
        }
    }

    // The names System.DirectoryServices.Protocols itself loads, in its order, so both use the same library.
    private static IntPtr LoadLibLdap()
    {
        foreach (var name in new[] { "libldap.so.2", "libldap-2.5.so.0", "libldap-2.4.so.2" })
            if (NativeLibrary.TryLoad(name, out var handle))
                return handle;
        throw new DllNotFoundException("libldap is not installed");
    }

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int SetStringOption(IntPtr ld, int option, [MarshalAs(UnmanagedType.LPUTF8Str)] string value);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int SetIntOption(IntPtr ld, int option, ref int value);
}
