using System.IO.Pipelines;
using System.Text;
using Microsoft.AspNetCore.Connections;

namespace Matrix.Homeserver.Http;

/// <summary>
/// Kestrel refuses some requests before any middleware sees them (a NUL in the path, a request line or headers over
/// its limits) and answers with a status line and an empty body. Every error a client gets must be the spec's
/// <c>{errcode, error}</c> JSON, so this connection middleware replaces such a bare answer (HTTP/1.x only: the header
/// block of a response without a body, written in one piece, closing the connection) with the same status and a JSON body.
/// </summary>
public static class BareErrorRewriter
{
    public static void UseBareErrorRewriting(this Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions listen) =>
        listen.Use(next => connection =>
        {
            var transport = connection.Transport;
            var output = PipeWriter.Create(new RewritingStream(transport.Output.AsStream(leaveOpen: true)));
            connection.Transport = new Transport(transport.Input, output);
            return next(connection);
        });

    private sealed record Transport(PipeReader Input, PipeWriter Output) : IDuplexPipe;

    private sealed class RewritingStream(Stream inner) : Stream
    {
        private static readonly byte[] StatusLinePrefix = "HTTP/1."u8.ToArray();
        private static readonly byte[] EmptyBody = "\r\nContent-Length: 0\r\n"u8.ToArray();
        private static readonly byte[] Closes = "\r\nConnection: close\r\n"u8.ToArray();

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            await inner.WriteAsync(Rewrite(buffer), cancellationToken);

        public override void Write(byte[] buffer, int offset, int count) => inner.Write(Rewrite(buffer.AsMemory(offset, count)).Span);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        private static ReadOnlyMemory<byte> Rewrite(ReadOnlyMemory<byte> buffer)
        {
            var span = buffer.Span;
            // "HTTP/1.1 4xx ..." with an empty body, closing: only Kestrel's own refusals look like this (the server's
            // errors all have JSON bodies, and a response is never split before its headers end).
            if (span.Length < 16 || span.Length > 1024 || !span.StartsWith(StatusLinePrefix) || span[9] != (byte)'4'
                || span.IndexOf(EmptyBody) < 0 || span.IndexOf(Closes) < 0 || !span.EndsWith("\r\n\r\n"u8))
                return buffer;
            var status = Encoding.ASCII.GetString(span[9..12]);
            var (errcode, message) = status switch
            {
                "414" => ("M_TOO_LARGE", "The request line is too long."),
                "431" => ("M_TOO_LARGE", "The request headers are too large."),
                "413" => ("M_TOO_LARGE", "The request is too large."),
                "408" => ("M_UNKNOWN", "The request took too long to arrive."),
                _ => ("M_UNRECOGNIZED", "The request is malformed (for example, the path holds a NUL character)."),
            };
            var statusLineEnd = span.IndexOf("\r\n"u8);
            var body = $"{{\"errcode\":\"{errcode}\",\"error\":\"{message}\"}}";
            return Encoding.ASCII.GetBytes(
                $"{Encoding.ASCII.GetString(span[..statusLineEnd])}\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\n" +
                $"Connection: close\r\n\r\n{body}");
        }

        public override void Flush() => inner.Flush();
        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
