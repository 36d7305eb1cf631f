using System.Net;
using System.Net.Sockets;

namespace Matrix.Federation.Identifiers;

/// <summary>A server name per the appendix grammar: a DNS name, IPv4 literal or bracketed IPv6 literal, with an optional port.</summary>
public readonly record struct ServerName
{
    public string Value { get; }
    public string Host { get; }
    public int? Port { get; }

    private ServerName(string value, string host, int? port)
    {
        Value = value;
        Host = host;
        Port = port;
    }

    public override string ToString() => Value;

    /// <summary>True for IPv4 and bracketed IPv6 literals.</summary>
    public bool IsIpLiteral => Host.StartsWith('[') || IPAddress.TryParse(Host, out _);

    public static bool TryParse(string? text, out ServerName serverName)
    {
        serverName = default;
        if (string.IsNullOrEmpty(text) || text.Length > 255)
            return false;

        string host;
        string? portText = null;
        if (text[0] == '[')
        {
            var close = text.IndexOf(']');
            if (close < 0)
                return false;
            host = text[..(close + 1)];
            var address = text[1..close];
            if (address.Length is < 2 or > 45 || !address.All(c => char.IsAsciiHexDigit(c) || c is ':' or '.')
                || !IPAddress.TryParse(address, out var parsed) || parsed.AddressFamily != AddressFamily.InterNetworkV6)
                return false;
            if (close + 1 < text.Length)
            {
                if (text[close + 1] != ':')
                    return false;
                portText = text[(close + 2)..];
            }
        }
        else
        {
            var colon = text.IndexOf(':');
            host = colon < 0 ? text : text[..colon];
            portText = colon < 0 ? null : text[(colon + 1)..];
            if (host.Length == 0 || !host.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.'))
                return false;
        }

        int? port = null;
        if (portText is not null)
        {
            if (portText.Length is < 1 or > 5 || !portText.All(char.IsAsciiDigit))
                return false;
            var number = int.Parse(portText);
            if (number > 65535)
                return false;
            port = number;
        }
        serverName = new ServerName(text, host, port);
        return true;
    }

    public static ServerName Parse(string text) =>
        TryParse(text, out var name) ? name : throw new FormatException($"'{text}' is not a valid server name");
}
