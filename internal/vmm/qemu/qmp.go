package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// QMP is a client of QEMU's machine protocol on a unix socket. Each call
// opens its own connection, so the zero value with Socket set is ready to
// use and a QMP value can be shared.
type QMP struct {
	Socket string
	// Dial opens the connection; nil means a unix socket dial of Socket.
	Dial func(ctx context.Context) (net.Conn, error)
}

// QMPError is an error QEMU returned for a command.
type QMPError struct {
	Command string
	Class   string
	Desc    string
}

func (e *QMPError) Error() string {
	return fmt.Sprintf("QMP %s: %s (%s)", e.Command, e.Desc, e.Class)
}

// maxReply caps one QMP reply line.
const maxReply = 1 << 20

// Execute runs one QMP command with args (nil for none) and decodes its
// return value into result (nil to discard it).
func (q *QMP) Execute(ctx context.Context, command string, args, result any) error {
	conn, err := q.dial(ctx)
	if err != nil {
		return fmt.Errorf("connecting to QMP socket %s: %w", q.Socket, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	r := bufio.NewReader(io.LimitReader(conn, 16*maxReply))
	var greeting struct {
		QMP json.RawMessage `json:"QMP"`
	}
	if err := readLine(r, &greeting); err != nil {
		return q.wrap(ctx, command, fmt.Errorf("no QMP greeting: %w", err))
	}
	if greeting.QMP == nil {
		return q.wrap(ctx, command, errors.New("no QMP greeting"))
	}
	if err := q.roundTrip(conn, r, "qmp_capabilities", nil, nil); err != nil {
		return q.wrap(ctx, command, err)
	}
	return q.wrap(ctx, command, q.roundTrip(conn, r, command, args, result))
}

func (q *QMP) wrap(ctx context.Context, command string, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("QMP %s: %w", command, ctx.Err())
	}
	var qe *QMPError
	if errors.As(err, &qe) {
		return err
	}
	return fmt.Errorf("QMP %s on %s: %w", command, q.Socket, err)
}

func (q *QMP) dial(ctx context.Context) (net.Conn, error) {
	if q.Dial != nil {
		return q.Dial(ctx)
	}
	var d net.Dialer
	return d.DialContext(ctx, "unix", q.Socket)
}

// roundTrip sends one command and reads replies until its own, skipping
// asynchronous events.
func (q *QMP) roundTrip(w io.Writer, r *bufio.Reader, command string, args, result any) error {
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	data, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := w.Write(append(data, '\n')); err != nil {
		return err
	}
	for {
		var reply struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
			Event string `json:"event"`
		}
		if err := readLine(r, &reply); err != nil {
			return err
		}
		switch {
		case reply.Event != "":
			continue
		case reply.Error != nil:
			return &QMPError{Command: command, Class: reply.Error.Class, Desc: reply.Error.Desc}
		case result != nil:
			return json.Unmarshal(reply.Return, result)
		default:
			return nil
		}
	}
}

// readLine decodes one JSON line, refusing lines longer than maxReply.
func readLine(r *bufio.Reader, v any) error {
	var line []byte
	for {
		chunk, isPrefix, err := r.ReadLine()
		if err != nil {
			return err
		}
		line = append(line, chunk...)
		if len(line) > maxReply {
			return fmt.Errorf("QMP reply longer than %d bytes", maxReply)
		}
		if !isPrefix {
			break
		}
	}
	return json.Unmarshal(line, v)
}
