package engine

import (
	"math/rand/v2"
	"regexp"
	"strconv"
)

// Docker's generated names: adjective_surname (after dockerd's
// namesgenerator, a smaller list of the same kind).
var (
	nameAdjectives = []string{
		"admiring", "adoring", "affectionate", "agitated", "amazing", "angry", "awesome", "beautiful",
		"blissful", "bold", "boring", "brave", "busy", "charming", "clever", "compassionate", "competent",
		"condescending", "confident", "cool", "cranky", "crazy", "dazzling", "determined", "distracted",
		"dreamy", "eager", "ecstatic", "elastic", "elated", "elegant", "eloquent", "epic", "exciting",
		"fervent", "festive", "flamboyant", "focused", "friendly", "frosty", "funny", "gallant", "gifted",
		"goofy", "gracious", "great", "happy", "hardcore", "heuristic", "hopeful", "hungry", "infallible",
		"inspiring", "intelligent", "interesting", "jolly", "jovial", "keen", "kind", "laughing", "loving",
		"lucid", "magical", "modest", "musing", "mystifying", "naughty", "nervous", "nice", "nifty",
		"nostalgic", "objective", "optimistic", "peaceful", "pedantic", "pensive", "practical", "priceless",
		"quirky", "quizzical", "recursing", "relaxed", "reverent", "romantic", "sad", "serene", "sharp",
		"silly", "sleepy", "stoic", "strange", "stupefied", "suspicious", "sweet", "tender", "thirsty",
		"trusting", "unruffled", "upbeat", "vibrant", "vigilant", "vigorous", "wizardly", "wonderful",
		"xenodochial", "youthful", "zealous", "zen",
	}
	nameSurnames = []string{
		"agnesi", "albattani", "allen", "almeida", "archimedes", "ardinghelli", "aryabhata", "austin",
		"babbage", "banach", "bardeen", "bartik", "bassi", "bell", "benz", "bhabha", "bhaskara", "black",
		"blackwell", "bohr", "booth", "borg", "bose", "boyd", "brahmagupta", "brattain", "brown", "carson",
		"cerf", "chandrasekhar", "chatelet", "chaum", "clarke", "colden", "cori", "cray", "curie", "darwin",
		"davinci", "dijkstra", "dubinsky", "easley", "edison", "einstein", "elion", "engelbart", "euclid",
		"euler", "faraday", "feistel", "fermat", "fermi", "feynman", "franklin", "gagarin", "galileo",
		"gates", "gauss", "germain", "goldberg", "goldstine", "goldwasser", "golick", "goodall", "gould",
		"greider", "hamilton", "haslett", "hawking", "heisenberg", "hellman", "hermann", "herschel", "hertz",
		"hodgkin", "hofstadter", "hopper", "hugle", "hypatia", "jackson", "jang", "jennings", "jepsen",
		"johnson", "joliot", "jones", "kalam", "kapitsa", "keldysh", "keller", "kepler", "khorana",
		"kilby", "kirch", "knuth", "kowalevski", "lalande", "lamarr", "lamport", "leakey", "leavitt",
		"lederberg", "lehmann", "lewin", "lichterman", "liskov", "lovelace", "lumiere", "mahavira",
		"margulis", "matsumoto", "maxwell", "mayer", "mccarthy", "mcclintock", "mclean", "meitner",
		"mendel", "mendeleev", "meninsky", "merkle", "mestorf", "mirzakhani", "montalcini", "moore",
		"morse", "moser", "murdock", "napier", "nash", "neumann", "newton", "nightingale", "nobel",
		"noether", "northcutt", "noyce", "panini", "pare", "pascal", "pasteur", "payne", "perlman",
		"pike", "poincare", "poitras", "proskuriakova", "ptolemy", "raman", "ramanujan", "rhodes", "ride",
		"ritchie", "robinson", "roentgen", "rosalind", "rubin", "saha", "sammet", "sanderson", "satoshi",
		"shamir", "shannon", "shaw", "shirley", "shockley", "shtern", "sinoussi", "snyder", "solomon",
		"spence", "stonebraker", "sutherland", "swanson", "swartz", "swirles", "taussig", "tesla",
		"tharp", "thompson", "torvalds", "tu", "turing", "varahamihira", "vaughan", "villani",
		"visvesvaraya", "volhard", "wescoff", "wilbur", "wiles", "williams", "williamson", "wilson",
		"wing", "wozniak", "wright", "wu", "yalow", "yonath", "zhukovsky",
	}
)

// generateName returns a docker-style name (adjective_surname) that taken
// does not hold; after a few collisions a digit is added, as dockerd does.
func generateName(taken func(string) bool) string {
	for retry := 0; ; retry++ {
		name := nameAdjectives[rand.IntN(len(nameAdjectives))] + "_" + nameSurnames[rand.IntN(len(nameSurnames))]
		if name == "boring_wozniak" { // Steve Wozniak is not boring
			continue
		}
		if retry >= 3 {
			name += strconv.Itoa(rand.IntN(10))
		}
		if !taken(name) {
			return name
		}
	}
}

// validName is docker's rule for container names (without the "/").
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)
