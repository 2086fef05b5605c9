# BioespCreatures inside the engine (godot3-server, headless): the module loads; the embedded
# model draws a creature into an ImageTexture of the asked size that is not blank; progress
# arrives in order; cancels end with failed("cancelled"); bad models and bad settings end with
# bioesp's messages; previews come while it draws; tiling and transparent sprites reach bioesp; a node freed mid-generation
# takes its job with it; and the frames keep coming while the model works: the longest gap
# between two frames during generation is printed and must stay under 100 ms.
# Run: godot3-server --path BUILD/godot3 --script tests/godot3/test_creatures.gd
extends SceneTree

const MAX_GAP_MS = 100.0
const Creatures = preload("res://bioesp/BioespCreatures.gdns")

var events = []       # [signal, args...] in arrival order, for every node
var last_frame = 0
var busy = 0          # generations running: frame gaps are measured meanwhile
var max_gap_ms = 0.0
var frames_while_busy = 0
var failures = 0


func _initialize():
	last_frame = OS.get_ticks_usec()
	connect("idle_frame", self, "_on_frame")
	run()


func _on_frame():
	var now = OS.get_ticks_usec()
	if now > 600 * 1000 * 1000:  # a script error leaves the engine running: stop it
		printerr("FAILED: the test did not finish in 10 minutes")
		OS.exit_code = 1
		quit()
	if busy > 0:
		max_gap_ms = max(max_gap_ms, (now - last_frame) / 1000.0)
		frames_while_busy += 1
	last_frame = now


func check(ok, what):
	if not ok:
		failures += 1
		printerr("FAILED: " + what)


func make_node():
	var node = Creatures.new()
	check(node != null, "BioespCreatures.new()")
	root.add_child(node)
	for s in ["progress", "preview", "finished", "failed", "model_loaded", "model_failed"]:
		node.connect(s, self, "_record", [s])
	return node


func _record(a, b = null, c = null, d = null):
	# Signal arguments come first, the bound name last.
	var args = [a, b, c, d]
	while args.back() == null:
		args.pop_back()
	var name = args.pop_back()
	events.append([name] + args)


func ended(job):
	for e in events:
		if (e[0] == "finished" or e[0] == "failed") and e[1] == job:
			return e
	return null


func wait_for(predicate_target, predicate, arg, seconds = 120.0):
	var deadline = OS.get_ticks_msec() + seconds * 1000
	yield(self, "idle_frame")  # a coroutine always, for yield(..., "completed")
	while not predicate_target.call(predicate, arg):
		if OS.get_ticks_msec() > deadline:
			check(false, "timed out waiting for %s(%s)" % [predicate, arg])
			return false
		yield(self, "idle_frame")
	return true


func has_event(name):
	for e in events:
		if e[0] == name:
			return true
	return false


func has_ended(job):
	return ended(job) != null


# A generation, waited for; `measured`: its frames count towards the longest gap (the bad
# inputs' frames do not: building a 10 MB prompt in GDScript is the test's own stall).
func generate(node, prompt, settings, measured = true):
	var job = node.generate(prompt, settings)
	busy += (1 if measured else 0)
	yield(wait_for(self, "has_ended", job), "completed")
	busy -= (1 if measured else 0)
	return ended(job)


func progress_of(job):
	var steps = []
	for e in events:
		if e[0] == "progress" and e[1] == job:
			steps.append([e[2], e[3]])
	return steps


func not_blank(image):
	image.lock()
	var first = image.get_pixel(0, 0)
	var differing = 0
	for y in range(image.get_height()):
		for x in range(image.get_width()):
			if image.get_pixel(x, y).to_rgba32() != first.to_rgba32():
				differing += 1
	image.unlock()
	return differing > image.get_width() * image.get_height() / 4


func run():
	yield(self, "idle_frame")
	var node = make_node()
	node.load_model("")
	yield(wait_for(self, "has_event", "model_loaded"), "completed")

	# A creature: size, content, progress in order.
	var settings = {"steps": 8, "seed": 7, "guidance": 5.0, "width": 64, "height": 64}
	var e = yield(generate(node, "lagarto", settings), "completed")
	check(e[0] == "finished", "the first creature: %s" % [e])
	if e[0] == "finished":
		var texture = e[2]
		check(texture is ImageTexture, "finished gives an ImageTexture")
		check(texture.get_width() == 64 and texture.get_height() == 64, "size %s" % texture.get_size())
		var image = texture.get_data()
		check(image != null and image.get_format() == Image.FORMAT_RGB8, "an RGB8 image")
		check(image != null and not_blank(image), "the creature is not blank")
	var first_image = e[2].get_data() if e[0] == "finished" else null
	var steps = progress_of(e[1])
	var expected = []
	for i in range(8):
		expected.append([i + 1, 8])
	check(steps == expected, "progress in order: %s" % [steps])

	# Live previews: the newest one each frame, before the creature, at the latents' size (the
	# embedded model has no tiny autoencoder: the linear latent-RGB map; its VAE scales by 4).
	e = yield(generate(node, "loro", {"steps": 8, "seed": 7, "width": 64, "height": 64, "preview_every": 2}), "completed")
	var previews = []
	for p in events:
		if p[0] == "preview" and p[1] == e[1]:
			previews.append(p[2])
	check(e[0] == "finished", "a creature with previews: %s" % [e])
	check(previews.size() >= 1 and previews.size() <= 4, "previews: %d (1 to 4)" % previews.size())
	for p in previews:
		check(p is ImageTexture and p.get_width() == 16, "a preview is a 16x16 ImageTexture")

	# A running job cancelled after its first step, and a queued one cancelled before it starts.
	var long_job = node.generate("mariposa", {"steps": 200, "seed": 1})
	var queued = node.generate("loro", {"steps": 8})
	busy += 1
	yield(wait_for(self, "progress_of", long_job), "completed")
	check(node.cancel(queued), "cancel finds the queued job")
	check(node.cancel(long_job), "cancel finds the running job")
	yield(wait_for(self, "has_ended", long_job), "completed")
	busy -= 1
	check(ended(long_job) == ["failed", long_job, "cancelled"], "running job cancelled: %s" % [ended(long_job)])
	check(ended(queued) == ["failed", queued, "cancelled"], "queued job cancelled: %s" % [ended(queued)])
	check(not node.cancel(long_job), "a finished job cannot be cancelled again")

	# Settings that bioesp refuses, or that are not settings: failed with the message.
	e = yield(generate(node, "x", {"width": -64}, false), "completed")
	check(e[0] == "failed" and "width: must be between 0 and 16384, not -64" in e[2], "negative size: %s" % [e])
	var huge = "a"
	while huge.length() < 10 * 1024 * 1024:
		huge += huge
	huge = huge.substr(0, 10 * 1024 * 1024)
	e = yield(generate(node, huge, {}, false), "completed")
	check(e[0] == "failed" and "10485760 bytes" in e[2], "10 MB prompt: %s" % [e.slice(0, 1)])
	e = yield(generate(node, "x", {"stepz": 3}, false), "completed")
	check(e[0] == "failed" and "unknown setting \"stepz\"" in e[2], "unknown setting: %s" % [e])
	e = yield(generate(node, "x", {"steps": "many"}, false), "completed")
	check(e[0] == "failed" and "steps: must be an integer, not 'many'" in e[2], "wrong type: %s" % [e])
	e = yield(generate(node, "x", {"tiling": "diagonal"}, false), "completed")
	check(e[0] == "failed" and "tiling: must be one of none, x, y, both, not 'diagonal'" in e[2], "bad tiling: %s" % [e])
	e = yield(generate(node, "x", {"steps": 3}), "completed")
	check(e[0] == "finished", "the node still draws after refusals: %s" % [e])

	# img2img from the first creature (an Image as init_image), and something else refused.
	e = yield(generate(node, "lagarto mariposa", {"init_image": first_image, "strength": 0.5, "steps": 8}), "completed")
	check(e[0] == "finished" and e[2].get_width() == 64, "img2img: %s" % [e])
	e = yield(generate(node, "x", {"init_image": "a picture"}, false), "completed")
	check(e[0] == "failed" and "must be an Image" in e[2], "init_image not an Image: %s" % [e])

	# Tiling and transparent sprites reach bioesp.
	e = yield(generate(node, "cactus", {"steps": 4, "tiling": "both"}), "completed")
	check(e[0] == "finished", "tiling both: %s" % [e])
	e = yield(generate(node, "pulpo", {"steps": 4, "background": "transparent"}), "completed")
	check(e[0] == "finished" and e[2].get_data().get_format() == Image.FORMAT_RGBA8, "a transparent sprite is RGBA")

	# A LoRA file that is not there fails the generations that ask for it, with bioesp's message.
	node.add_lora("missing", "/nonexistent/lora.safetensors", 0.8)
	e = yield(generate(node, "x", {"steps": 2}), "completed")
	check(e[0] == "failed" and "/nonexistent/lora.safetensors" in e[2], "missing LoRA: %s" % [e])
	check(node.remove_lora("missing"), "remove_lora")
	e = yield(generate(node, "x", {"steps": 2}), "completed")
	check(e[0] == "finished", "without the LoRA again: %s" % [e])

	# A model that is not there: model_failed, and generations fail with bioesp's message.
	var missing = make_node()
	missing.load_model("/nonexistent/model")
	yield(wait_for(self, "has_event", "model_failed"), "completed")
	e = yield(generate(missing, "x", {}), "completed")
	check(e[0] == "failed" and "/nonexistent/model: no such model folder or file" in e[2], "missing model: %s" % [e])

	# A node freed while it draws: its job is cancelled off the main thread, nothing crashes.
	var doomed = make_node()
	doomed.load_model("")
	var doomed_job = doomed.generate("girasol", {"steps": 200})
	busy += 1
	yield(wait_for(self, "progress_of", doomed_job), "completed")
	doomed.queue_free()
	for i in range(10):
		yield(self, "idle_frame")
	busy -= 1

	print("frames while generating: %d, longest gap between two frames: %.1f ms (fails above %.0f ms)" % [frames_while_busy, max_gap_ms, MAX_GAP_MS])
	check(frames_while_busy > 50, "the engine ticked while generating")
	check(max_gap_ms < MAX_GAP_MS, "longest frame gap %.1f ms" % max_gap_ms)
	print("godot3 module: %d checks failed" % failures if failures else "godot3 module: all checks passed")
	OS.exit_code = 1 if failures else 0
	quit()
