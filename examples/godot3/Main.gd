# Each key press grows a creature with the model that ships with bioesp, as a sprite with a
# transparent background. The game keeps running while it is drawn: BioespCreatures works on
# bioesp's threads and hands the texture over in a signal.
extends Node2D

const PROMPTS = ["lagarto", "mariposa", "loro", "cactus", "pulpo", "girasol", "lagarto mariposa", "cactus tigre"]
const CELL = 140

onready var creatures = $Creatures
onready var status = $Status
var prompts = {}  # job → prompt
var placed = 0


func _ready():
	randomize()
	creatures.connect("model_loaded", self, "_on_model_loaded")
	creatures.connect("model_failed", self, "_on_model_failed")
	creatures.connect("progress", self, "_on_progress")
	creatures.connect("finished", self, "_on_finished")
	creatures.connect("failed", self, "_on_failed")
	creatures.load_model("")  # the embedded model; or a folder, a single file, a Hub id


func _unhandled_input(event):
	if event is InputEventKey and event.pressed and not event.echo:
		var prompt = PROMPTS[randi() % PROMPTS.size()]
		var settings = {"steps": 25, "guidance": 5.0, "seed": randi(), "background": "transparent"}
		prompts[creatures.generate(prompt, settings)] = prompt


func _on_model_loaded(model):
	status.text = "Press a key to grow a creature (%s)" % model


func _on_model_failed(message):
	status.text = "The model did not load: " + message


func _on_progress(job, step, total):
	status.text = "%s: step %d of %d" % [prompts[job], step, total]


func _on_finished(job, texture):
	var sprite = Sprite.new()
	sprite.texture = texture
	sprite.scale = Vector2(2, 2)
	sprite.position = Vector2(80 + (placed % 7) * CELL, 110 + (placed / 7) * CELL)
	add_child(sprite)
	placed += 1
	status.text = "%s is here. Another key, another creature." % prompts[job]
	prompts.erase(job)


func _on_failed(job, message):
	status.text = "%s failed: %s" % [prompts[job], message]
	prompts.erase(job)
