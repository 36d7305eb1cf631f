using System.Security.Cryptography.X509Certificates;
using Matrix.Homeserver.Config;

namespace Matrix.Homeserver.Hosting;

/// <summary>
/// The certificates of the TLS listeners, read from their PEM files at start-up and again on SIGHUP (a renewed
/// certificate at the same paths): new connections get the current one. A file that cannot be read keeps the old one.
/// </summary>
public sealed class TlsCertificates
{
    private readonly Dictionary<ListenerConfig, X509Certificate2> _current = [];
    private readonly Lock _lock = new();

    public TlsCertificates(HomeserverConfig config)
    {
        foreach (var listener in config.Listeners.Where(l => l.TlsCertificatePath is not null))
            _current[listener] = Read(listener);
    }

    public X509Certificate2 For(ListenerConfig listener)
    {
        lock (_lock)
            return _current[listener];
    }

    /// <summary>Reads every listener's files again; returns the errors of those that kept their old certificate.</summary>
    public List<string> Reload()
    {
        var errors = new List<string>();
        lock (_lock)
            foreach (var listener in _current.Keys.ToList())
            {
                try
                {
                    _current[listener] = Read(listener);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException
                    or ArgumentException)
                {
                    errors.Add($"{listener.TlsCertificatePath}: {e.Message}");
                }
            }
        return errors;
    }

    private static X509Certificate2 Read(ListenerConfig listener) =>
        X509Certificate2.CreateFromPemFile(listener.TlsCertificatePath!, listener.TlsPrivateKeyPath);
}
