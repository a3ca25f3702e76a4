// Experiment (A/B before changing production code): amqplib writes every AMQP frame with its own socket write
// (its muxer reads one frame at a time from each channel's object-mode buffer), so an ack and a publish, or 50
// publishes of one tick, are 2 or 50 syscalls. Corking the socket around one muxer pass makes it one writev.
import { Transporters } from "moleculer";

let enabled = false;
let installed = false;

export function setCork(on: boolean) {
	enabled = on;
	if (installed) return;
	installed = true;
	const proto: any = (Transporters as any).AMQP.prototype;
	const orig = proto.onConnected;
	proto.onConnected = function (this: any, ...args: unknown[]) {
		if (enabled) corkMuxer(this.connection);
		return orig.apply(this, args);
	};
}

export function corkMuxer(channelModel: any): boolean {
	const mux = channelModel?.connection?.muxer;
	if (!mux || typeof mux._readIncoming !== "function" || typeof mux.out?.cork !== "function" || mux.__corked)
		return false;
	const readIncoming = mux._readIncoming;
	mux._readIncoming = function (this: any) {
		this.out.cork();
		try {
			return readIncoming.call(this);
		} finally {
			this.out.uncork();
		}
	};
	mux.__corked = true;
	return true;
}
