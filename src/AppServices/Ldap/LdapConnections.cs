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
    private const int LdapOptTimeout = 0x5002;
    private const int LdapOptNetworkTimeout = 0x5005;
    /// <summary>libldap's "client side timeout exceeded" result code, as <see cref="LdapException.ErrorCode"/>.</summary>
    public const int ClientTimeoutErrorCode = 85;
    private static readonly Lock LibLdapOptions = new();
    private static string? _caFileSet;
    private static int _timeoutMsSet = -1;

    public static LdapConnection Open(LdapEndpoint config)
    {
        var uri = new Uri(config.Uri);
        var secure = uri.Scheme == "ldaps";
        if ((secure || config.StartTls) && config.TlsCaFile is { } caFile)
            TrustCaFile(caFile);
        BoundEveryWait(config.TimeoutMs);
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
        lock (LibLdapOptions)
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

    /// <summary>
    /// On Linux, <see cref="LdapConnection.Timeout"/> bounds neither the connect, nor the bind, nor a search against a
    /// server that accepts the connection and never answers: libldap's own process-wide defaults (the network timeout
    /// for the connect, the API timeout for every wait for a result) do, so new handles take them from here. One
    /// timeout per process, like the CA file.
    /// </summary>
    private static void BoundEveryWait(int timeoutMs)
    {
        lock (LibLdapOptions)
        {
            if (_timeoutMsSet == timeoutMs)
                return;
            var setOption = Marshal.GetDelegateForFunctionPointer<SetTimeOption>(NativeLibrary.GetExport(LoadLibLdap(), "ldap_set_option"));
            var limit = new TimeVal { Seconds = timeoutMs / 1000, Microseconds = timeoutMs % 1000 * 1000 };
            if (setOption(IntPtr.Zero, LdapOptTimeout, ref limit) != 0 || setOption(IntPtr.Zero, LdapOptNetworkTimeout, ref limit) != 0)
                throw new InvalidOperationException("libldap refused the timeout");
            _timeoutMsSet = timeoutMs;
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

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeVal
    {
        public long Seconds;
        public long Microseconds;
    }

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int SetTimeOption(IntPtr ld, int option, ref TimeVal value);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int SetIntOption(IntPtr ld, int option, ref int value);
}
