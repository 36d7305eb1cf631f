using System.Net.Mail;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Text;
using Matrix.Homeserver.Config;

namespace Matrix.Homeserver.Email;

/// <summary>Sending failed: the SMTP server refused, could not be reached, or would not secure the connection as configured.</summary>
public sealed class MailDeliveryException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// A small SMTP client (RFC 5321) for the <c>email:</c> section: implicit TLS (<c>force_tls</c>) or STARTTLS (RFC 3207)
/// when offered (<c>enable_tls</c>) or required (<c>require_transport_security</c>), AUTH PLAIN or LOGIN (RFC 4954),
/// one message per connection. Written here because the framework's SmtpClient cannot speak implicit TLS.
/// </summary>
public sealed class SmtpMailer(HomeserverConfig config, ILogger<SmtpMailer> logger)
{
    private EmailConfig Email => config.Email;

    /// <summary>Sends a plain-text mail to one address (already canonical, see <see cref="MailAddresses"/>).</summary>
    public async Task SendAsync(string to, string subject, string text, CancellationToken ct)
    {
        if (!MailAddresses.TryParseFrom(Email.NotifFrom.Replace("%(app)s", Email.AppName), out var from))
            throw new MailDeliveryException("email.notif_from is not an address");
        var message = Compose(from, to, subject, text);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(Email.TimeoutMs);
        try
        {
            await DeliverAsync(from.Address, to, message, timeout.Token);
        }
        catch (Exception e) when (e is IOException or SocketException or AuthenticationException
            || (e is OperationCanceledException && !ct.IsCancellationRequested))
        {
            throw new MailDeliveryException($"could not deliver mail through {Email.SmtpHost}:{Email.SmtpPort}: {e.Message}", e);
        }
        logger.LogInformation("Mailed {Subject} through {Host}:{Port}", subject, Email.SmtpHost, Email.SmtpPort);
    }

    private byte[] Compose(MailAddress from, string to, string subject, string text)
    {
        var builder = new StringBuilder();
        builder.Append("From: ").Append(HeaderPhrase(from)).Append("\r\n");
        builder.Append("To: ").Append(to).Append("\r\n");
        builder.Append("Subject: ").Append(EncodedWord(subject)).Append("\r\n");
        builder.Append("Date: ").Append(DateTimeOffset.UtcNow.ToString("ddd, dd MMM yyyy HH:mm:ss +0000", System.Globalization.CultureInfo.InvariantCulture)).Append("\r\n");
        builder.Append("Message-ID: <").Append(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16))).Append('@').Append(from.Host).Append(">\r\n");
        builder.Append("MIME-Version: 1.0\r\n");
        builder.Append("Content-Type: text/plain; charset=utf-8\r\n");
        builder.Append("Content-Transfer-Encoding: base64\r\n\r\n");
        var body = Convert.ToBase64String(Encoding.UTF8.GetBytes(text.ReplaceLineEndings("\r\n")));
        for (var i = 0; i < body.Length; i += 76)
            builder.Append(body, i, Math.Min(76, body.Length - i)).Append("\r\n");
        return Encoding.ASCII.GetBytes(builder.ToString());
    }

    private static string HeaderPhrase(MailAddress address) =>
        address.DisplayName.Length == 0 ? address.Address : $"{EncodedWord(address.DisplayName)} <{address.Address}>";

    /// <summary>RFC 2047 encoding for header text that is not plain printable ASCII.</summary>
    private static string EncodedWord(string text) => text.All(c => c is >= ' ' and <= '~')
        ? text
        : $"=?utf-8?B?{Convert.ToBase64String(Encoding.UTF8.GetBytes(text))}?=";

    private async Task DeliverAsync(string from, string to, byte[] message, CancellationToken ct)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(Email.SmtpHost, Email.SmtpPort, ct);
        var connection = new SmtpConnection(tcp.GetStream());
        if (Email.ForceTls)
            await connection.StartTlsAsync(Email.SmtpHost, ct);
        await connection.ExpectAsync(220, ct);
        var extensions = await GreetAsync(connection, ct);
        if (!connection.IsTls && Email.EnableTls && HasExtension(extensions, "STARTTLS"))
        {
            await connection.CommandAsync("STARTTLS", 220, ct);
            await connection.StartTlsAsync(Email.SmtpHost, ct);
            extensions = await GreetAsync(connection, ct);
        }
        if (Email.RequireTransportSecurity && !connection.IsTls)
            throw new MailDeliveryException($"{Email.SmtpHost}:{Email.SmtpPort} does not offer STARTTLS and email.require_transport_security is set");
        if (Email.SmtpUser is { } user && Email.SmtpPass is { } password)
            await AuthenticateAsync(connection, extensions, user, password, ct);
        await connection.CommandAsync($"MAIL FROM:<{from}>", 250, ct);
        await connection.CommandAsync($"RCPT TO:<{to}>", 250, ct, alsoAccepted: 251);
        await connection.CommandAsync("DATA", 354, ct);
        await connection.SendDataAsync(message, ct);
        await connection.ExpectAsync(250, ct);
        // The mail is delivered once DATA is accepted: QUIT's answer (some servers do not know it) changes nothing.
        await connection.ReplyToAsync("QUIT", ct);
    }

    /// <summary>EHLO, and its extensions; HELO (no extensions) with a server that does not know EHLO (RFC 5321 3.2).</summary>
    private static async Task<IReadOnlyList<string>> GreetAsync(SmtpConnection connection, CancellationToken ct)
    {
        var localName = System.Net.Dns.GetHostName();
        var (code, lines) = await connection.ReplyToAsync($"EHLO {localName}", ct);
        if (code == 250)
            return lines;
        if (code is not (500 or 502 or 504 or 550))
            throw new MailDeliveryException($"the SMTP server answered EHLO with {code} {string.Join(' ', lines)}");
        await connection.CommandAsync($"HELO {localName}", 250, ct);
        return [];
    }

    private static async Task AuthenticateAsync(SmtpConnection connection, IReadOnlyList<string> extensions, string user, string password, CancellationToken ct)
    {
        var mechanisms = extensions.FirstOrDefault(e => e.StartsWith("AUTH ", StringComparison.OrdinalIgnoreCase))?.Split(' ').Skip(1)
            .Select(m => m.ToUpperInvariant()).ToHashSet() ?? [];
        static string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));
        if (mechanisms.Contains("PLAIN"))
            await connection.CommandAsync($"AUTH PLAIN {B64($"\0{user}\0{password}")}", 235, ct, secret: true);
        else if (mechanisms.Contains("LOGIN"))
        {
            await connection.CommandAsync("AUTH LOGIN", 334, ct);
            await connection.CommandAsync(B64(user), 334, ct, secret: true);
            await connection.CommandAsync(B64(password), 235, ct, secret: true);
        }
        else
            throw new MailDeliveryException("the SMTP server offers neither AUTH PLAIN nor AUTH LOGIN");
    }

    private static bool HasExtension(IReadOnlyList<string> lines, string name) =>
        lines.Any(line => line.Equals(name, StringComparison.OrdinalIgnoreCase) || line.StartsWith(name + " ", StringComparison.OrdinalIgnoreCase));

    /// <summary>One SMTP session's wire: reply lines in, command lines and the message out.</summary>
    private sealed class SmtpConnection(Stream stream)
    {
        private const int MaxReplyLine = 4096;
        private Stream _stream = stream;
        private readonly byte[] _buffer = new byte[4096];
        private int _start;
        private int _end;

        public bool IsTls => _stream is SslStream;

        public async Task StartTlsAsync(string host, CancellationToken ct)
        {
            var tls = new SslStream(_stream, leaveInnerStreamOpen: false);
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = host }, ct);
            _stream = tls;
            _start = _end = 0;
        }

        /// <summary>Sends a command and reads its reply; the reply's text lines (code removed) when its code is the one expected.</summary>
        public async Task<IReadOnlyList<string>> CommandAsync(string command, int expected, CancellationToken ct, int? alsoAccepted = null, bool secret = false)
        {
            var (code, lines) = await ReplyToAsync(command, ct);
            if (code != expected && code != alsoAccepted)
                throw new MailDeliveryException($"the SMTP server answered {(secret ? "(credentials)" : command.Split(' ')[0])} with {code} {string.Join(' ', lines)}");
            return lines;
        }

        /// <summary>Sends a command; the reply's code and text lines, whatever the code.</summary>
        public async Task<(int Code, IReadOnlyList<string> Lines)> ReplyToAsync(string command, CancellationToken ct)
        {
            await _stream.WriteAsync(Encoding.UTF8.GetBytes(command + "\r\n"), ct);
            await _stream.FlushAsync(ct);
            return await ReadReplyAsync(ct);
        }

        public async Task ExpectAsync(int expected, CancellationToken ct)
        {
            var (code, lines) = await ReadReplyAsync(ct);
            if (code != expected)
                throw new MailDeliveryException($"the SMTP server answered with {code} {string.Join(' ', lines)} where {expected} was due");
        }

        private async Task<(int Code, IReadOnlyList<string> Lines)> ReadReplyAsync(CancellationToken ct)
        {
            var lines = new List<string>();
            while (true)
            {
                var line = await ReadLineAsync(ct);
                if (line.Length < 3 || !int.TryParse(line.AsSpan(0, 3), out var code))
                    throw new MailDeliveryException($"the SMTP server sent a malformed reply: {line}");
                lines.Add(line.Length > 4 ? line[4..] : "");
                if (line.Length > 3 && line[3] == '-')
                    continue;
                return (code, lines);
            }
        }

        /// <summary>The message after DATA: lines starting with a dot are doubled (RFC 5321 4.5.2), then the final dot.</summary>
        public async Task SendDataAsync(byte[] message, CancellationToken ct)
        {
            using var output = new MemoryStream(message.Length + 64);
            var lineStart = true;
            foreach (var b in message)
            {
                if (lineStart && b == (byte)'.')
                    output.WriteByte((byte)'.');
                output.WriteByte(b);
                lineStart = b == (byte)'\n';
            }
            if (!lineStart)
                output.Write("\r\n"u8);
            output.Write(".\r\n"u8);
            await _stream.WriteAsync(output.GetBuffer().AsMemory(0, (int)output.Length), ct);
            await _stream.FlushAsync(ct);
        }

        private async Task<string> ReadLineAsync(CancellationToken ct)
        {
            var line = new List<byte>();
            while (true)
            {
                if (_start == _end)
                {
                    _start = 0;
                    _end = await _stream.ReadAsync(_buffer, ct);
                    if (_end == 0)
                        throw new IOException("the SMTP server closed the connection");
                }
                var b = _buffer[_start++];
                if (b == '\n')
                    return Encoding.UTF8.GetString(line.ToArray()).TrimEnd('\r');
                if (line.Count == MaxReplyLine)
                    throw new MailDeliveryException("the SMTP server sent an over-long reply line");
                line.Add(b);
            }
        }
    }
}
