using System.Buffers;
using System.IO.Pipelines;
using System.Text;

namespace Matrix.Homeserver.Http;

/// <summary>
/// Kestrel refuses some requests before any middleware sees them (a NUL in the path, a request line or headers over
/// its limits) and answers with a status line and an empty body. Every error a client gets must be the spec's
/// <c>{errcode, error}</c> JSON, so this connection middleware replaces such a bare answer (HTTP/1.x only: the header
/// block of a response without a body, flushed in one piece, closing the connection) with the same status and a JSON body.
/// </summary>
public static class BareErrorRewriter
{
    public static void UseBareErrorRewriting(this Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions listen) =>
        listen.Use(next => connection =>
        {
            var transport = connection.Transport;
            connection.Transport = new Transport(transport.Input, new RewritingWriter(transport.Output));
            return next(connection);
        });

    private sealed record Transport(PipeReader Input, PipeWriter Output) : IDuplexPipe;

    /// <summary>Collects what is written between flushes and hands it on at each flush, rewritten when it is a bare refusal.</summary>
    private sealed class RewritingWriter(PipeWriter inner) : PipeWriter
    {
        private const int RetainedBytes = 64 * 1024;
        private ArrayBufferWriter<byte> _pending = new();

        public override void Advance(int bytes) => _pending.Advance(bytes);
        public override Memory<byte> GetMemory(int sizeHint = 0) => _pending.GetMemory(sizeHint);
        public override Span<byte> GetSpan(int sizeHint = 0) => _pending.GetSpan(sizeHint);
        public override void CancelPendingFlush() => inner.CancelPendingFlush();
        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override async ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
        {
            if (_pending.WrittenCount == 0)
                return await inner.FlushAsync(cancellationToken);
            try
            {
                return await inner.WriteAsync(Rewrite(_pending.WrittenMemory), cancellationToken);
            }
            finally
            {
                // A connection keeps its buffer between flushes, but not one a large body (a media download) grew.
                if (_pending.Capacity > RetainedBytes)
                    _pending = new ArrayBufferWriter<byte>();
                else
                    _pending.ResetWrittenCount();
            }
        }
    }

    private static readonly byte[] StatusLinePrefix = "HTTP/1."u8.ToArray();
    private static readonly byte[] EmptyBody = "\r\nContent-Length: 0\r\n"u8.ToArray();
    private static readonly byte[] Closes = "\r\nConnection: close\r\n"u8.ToArray();

    /// <summary>
    /// "HTTP/1.1 4xx ..." with an empty body, closing: only Kestrel's own refusals look like this (the server's errors
    /// all have JSON bodies); anything else passes as it is.
    /// </summary>
    private static ReadOnlyMemory<byte> Rewrite(ReadOnlyMemory<byte> buffer)
    {
        var span = buffer.Span;
        if (span.Length < 16 || span.Length > 1024 || !span.StartsWith(StatusLinePrefix) || span[9] != (byte)'4'
            || span.IndexOf(EmptyBody) < 0 || span.IndexOf(Closes) < 0 || !span.EndsWith("\r\n\r\n"u8))
            return buffer;
        var (errcode, message) = Encoding.ASCII.GetString(span[9..12]) switch
        {
            "414" => ("M_TOO_LARGE", "The request line is too long."),
            "431" => ("M_TOO_LARGE", "The request headers are too large."),
            "413" => ("M_TOO_LARGE", "The request is too large."),
            "408" => ("M_UNKNOWN", "The request took too long to arrive."),
            _ => ("M_UNRECOGNIZED", "The request is malformed (for example, the path holds a NUL character)."),
        };
        var statusLine = Encoding.ASCII.GetString(span[..span.IndexOf("\r\n"u8)]);
        var body = $"{{\"errcode\":\"{errcode}\",\"error\":\"{message}\"}}";
        return Encoding.ASCII.GetBytes(
            $"{statusLine}\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n{body}");
    }
}
