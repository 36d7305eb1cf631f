using System.DirectoryServices.Protocols;
using System.Runtime.InteropServices;
using System.Text;

namespace Matrix.AppServices.Ldap;

/// <summary>Where and how to reach an LDAP directory (the homeserver's LDAP login and the directory-sync bridge share it).</summary>
/// <param name="Uri"><c>ldap://host:port</c> or <c>ldaps://host:port</c>.</param>
/// <param name="TlsCaFile">PEM file of the CA that signed the directory's certificate; the system's CAs otherwise.</param>
public sealed record LdapEndpoint(string Uri, bool StartTls, string? TlsCaFile, int TimeoutMs);

/// <summary>
/// Opens connections to a directory: LDAPv3, simple binds, no referral chasing, every request bounded by the timeout;
/// LDAPS or StartTLS with the certificate checked against the CA file (or the system's). Also the escaping that keeps
/// user input from changing a filter or a DN.
/// </summary>
public static class LdapConnections
{
    private const int LdapOptXTlsCaCertFile = 0x6002;
    private const int LdapOptXTlsRequireCert = 0x6006;
    private const int LdapOptXTlsDemand = 2;
    private static readonly Lock TlsSetup = new();
    private static string? _caFileSet;

    public static LdapConnection Open(LdapEndpoint config)
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

    /// <summary>RFC 4515: <c>* ( ) \ NUL</c> (and every non-ASCII byte) as <c>\XX</c>, so a value cannot widen the filter.</summary>
    public static string EscapeFilterValue(string value)
    {
        var escaped = new StringBuilder();
        foreach (var b in Encoding.UTF8.GetBytes(value))
            escaped.Append(b is (byte)'*' or (byte)'(' or (byte)')' or (byte)'\\' or 0 || b >= 0x80 ? $"\\{b:x2}" : ((char)b).ToString());
        return escaped.ToString();
    }

    /// <summary>RFC 4514: escapes the characters special in a DN attribute value.</summary>
    public static string EscapeDnValue(string value)
    {
        var escaped = new StringBuilder();
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c is ',' or '+' or '"' or '\\' or '<' or '>' or ';' or '=' || (i == 0 && c is ' ' or '#') || (i == value.Length - 1 && c == ' '))
                escaped.Append('\\');
            escaped.Append(c == '\0' ? "\\00" : c.ToString());
        }
        return escaped.ToString();
    }

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int SetStringOption(IntPtr ld, int option, [MarshalAs(UnmanagedType.LPUTF8Str)] string value);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int SetIntOption(IntPtr ld, int option, ref int value);
}
