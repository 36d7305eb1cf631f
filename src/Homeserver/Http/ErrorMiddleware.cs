using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Matrix.Homeserver.Http;

/// <summary>Maps every failure to the spec's error shape: no request ever sees a stack trace.</summary>
public static class ErrorMiddleware
{
    public static void UseMatrixErrors(this WebApplication app)
    {
        app.Use(async (context, next) =>
        {
            try
            {
                await next(context);
            }
            catch (Exception exception) when (!context.Response.HasStarted)
            {
                var error = exception switch
                {
                    MatrixException matrix => matrix,
                    BadHttpRequestException { StatusCode: 413 } => MatrixException.TooLarge("Request body too large."),
                    BadHttpRequestException bad => new MatrixException(bad.StatusCode, "M_UNKNOWN", "Bad request."),
                    OperationCanceledException when context.RequestAborted.IsCancellationRequested => null,
                    _ => new MatrixException(500, "M_UNKNOWN", "Internal server error."),
                };
                if (error is null)
                    return;
                // A MatrixException of 5xx is a failure the code foresaw (an unreachable service), logged where it arose.
                if (error.Status >= 500 && exception is not MatrixException)
                    context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Matrix.Homeserver.Errors")
                        .LogError(exception, "Unhandled error on {Method} {Path}", context.Request.Method, context.Request.Path);
                context.Response.Clear();
                // A refused oversized body is left unread: tell the client not to reuse the connection.
                if (error.Status == 413)
                    context.Response.Headers.Connection = "close";
                await WriteAsync(context, error);
            }
        });

        // Routing leaves unknown paths as 404 and known paths with the wrong method as 405, both without a body.
        app.UseStatusCodePages(async context =>
        {
            var status = context.HttpContext.Response.StatusCode;
            if (status is 404 or 405)
                await WriteAsync(context.HttpContext, MatrixException.Unrecognized(status));
        });
    }

    public static Task WriteAsync(HttpContext context, MatrixException error)
    {
        // Spec v1.10+: a rate-limited answer carries Retry-After (seconds, rounded up) as well as retry_after_ms.
        if (error.Status == 429 && error.ToJson()["retry_after_ms"] is JsonValue retry && retry.TryGetValue<long>(out var ms))
            context.Response.Headers.RetryAfter = ((ms + 999) / 1000).ToString(System.Globalization.CultureInfo.InvariantCulture);
        return context.WriteJsonAsync(error.ToJson(), error.Status);
    }

    /// <summary>
    /// Writes the body as UTF-8 with its length, in one piece: the response then leaves in a single send, where a body
    /// streamed without a length goes out chunked and takes a second send for its last chunk (a long-poll answer is small
    /// and the sends were a good part of what it cost).
    /// </summary>
    public static Task WriteJsonAsync(this HttpContext context, JsonNode body, int status = 200)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(InitialBufferBytes);
        var writer = t_writer ??= new Utf8JsonWriter(buffer, WriterOptions);
        try
        {
            writer.Reset(buffer);
            body.WriteTo(writer);
            writer.Flush();
            context.Response.ContentLength = buffer.WrittenCount;
            context.Response.BodyWriter.Write(buffer.WrittenSpan);
        }
        finally
        {
            // A big answer (an initial sync) does not keep its buffer on the thread (nor its writer, which points at it).
            if (buffer.Capacity > MaxKeptBufferBytes)
                (t_buffer, t_writer) = (null, null);
            else
                buffer.ResetWrittenCount();
        }
        return Task.CompletedTask;
    }

    private const int InitialBufferBytes = 16 * 1024;
    private const int MaxKeptBufferBytes = 256 * 1024;

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    /// <summary>How responses are written (JSON pieces serialised ahead of a response must be written the same way).</summary>
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}
